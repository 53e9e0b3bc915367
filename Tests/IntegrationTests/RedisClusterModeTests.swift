import Actors
import ChatRuntime
import ChatService
import Foundation
import Logging
import TestSupport
import Testing

/// The whole service in cluster mode (REDIS_CLUSTER_NODES) against a real six-node Redis
/// Cluster on loopback ports: entries spread over the primaries, reads from each, a primary
/// killed under read load, slots resharded while reading and writing.
@Suite("Redis Cluster mode", .serialized, .timeLimit(.minutes(5)))
struct RedisClusterModeTests {
    static let logger = Logger(label: "test.cluster-mode")
    static let chats = 60
    /// The pause between rounds of the tests' read and write load.
    static let loadPause = Duration.milliseconds(20)

    /// Cluster mode with short retry, health and refresh periods. REDIS_URL's address is
    /// ignored in cluster mode: nothing listens on port 1.
    static func environment(_ cluster: LocalRedisCluster, extra: [String: String] = [:]) -> [String: String] {
        [
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "REDIS_CLUSTER_NODES": cluster.seedList,
            "REDIS_CLUSTER_REFRESH_INTERVAL": "1s",
            "REDIS_RETRY_DELAY": "100ms", "REDIS_MAX_RETRY_DELAY": "500ms", "REDIS_MAX_RETRIES": "5",
            "REDIS_HEALTH_CHECK_INTERVAL": "500ms", "REDIS_CONNECT_TIMEOUT": "500ms", "REDIS_COMMAND_TIMEOUT": "1s",
            "SHUTDOWN_TIMEOUT": "2s",
        ].merging(extra) { $1 }
    }

    /// The chats' entry keys on the node at `port` (SCAN, so it never blocks the node).
    static func entryKeys(on node: RedisServer) async -> Set<String> {
        let output = (try? await node.cli("--scan", "--pattern", "participants:v1:{*}")) ?? ""
        return Set(output.split(separator: "\n").map(String.init).filter { !$0.isEmpty })
    }

    static func node(_ cluster: LocalRedisCluster, port: Int) -> RedisServer? {
        cluster.nodes.first { $0.port == port }
    }

    @Test func aFullRefreshSpreadsEntriesOverEveryPrimaryAndEachServesReads() async throws {
        let cluster = try await LocalRedisCluster.start(logger: Self.logger)
        defer { cluster.cleanup() }
        let backends = try await TestBackends.start(chats: Self.chats, logger: Self.logger)
        let writer = try await InProcessService(
            backends: backends, environment: Self.environment(cluster), logger: Self.logger, readiness: .redis)

        let health = await writer.get("/health", token: nil)
        #expect(health.json["status"] as? String == "ok")
        let nodes = (health.json["redis"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
        #expect(nodes.count == 3, "three primaries in /health: \(nodes)")
        #expect(nodes.allSatisfy { $0["state"] as? String == "ready" })

        let accepted = await writer.admin("POST", "/internal/participants/refresh")
        let jobID = try #require(accepted.json["job_id"] as? String, "refresh answered \(accepted.status)")
        let job = try await writer.waitForJob(jobID, timeout: .seconds(60))
        #expect(job["state"] as? String == "completed", "\(job)")

        let primaries = await cluster.primaryPorts()
        #expect(primaries.count == 3)
        var all = Set<String>()
        for port in primaries {
            let keys = await Self.entryKeys(on: try #require(Self.node(cluster, port: port)))
            #expect(!keys.isEmpty, "primary \(port) holds no entry")
            all.formUnion(keys)
        }
        #expect(all.count == Self.chats, "every chat written once: \(all.count)")

        // A second instance, with an empty L1, reads every chat from the primary that holds it.
        let reader = try await InProcessService(
            backends: backends,
            environment: Self.environment(cluster, extra: ["PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "false"]),
            logger: Self.logger, readiness: .redis)
        var sources: [String: Int] = [:]
        for number in 1...Self.chats {
            let reply = await reader.get("/v1/chats/chat-\(number)/participants")
            #expect(reply.status == 200, "chat-\(number)")
            sources[reply.json["source"] as? String ?? "?", default: 0] += 1
        }
        #expect(sources == ["cache": Self.chats], "every read from Redis: \(sources)")
        await reader.close()
        await writer.close()
        await backends.close()
    }

    @Test func aKilledPrimaryFailsOverWhileHotChatsKeepAnswering() async throws {
        let cluster = try await LocalRedisCluster.start(logger: Self.logger)
        defer { cluster.cleanup() }
        let backends = try await TestBackends.start(chats: Self.chats, logger: Self.logger)
        let service = try await InProcessService(
            backends: backends, environment: Self.environment(cluster), logger: Self.logger, readiness: .redis)
        let supervisor = service.application.supervisor
        #expect(await eventually(timeout: .seconds(10)) { await service.isLeader })

        // The victim is the primary of the coordination keys: the leader lock and the batch
        // stream fail over with it.
        let victimAddress = try #require(await supervisor.connectedEndpoint(forKey: CoordinationKeys.leader))
        let victim = try #require(Self.node(cluster, port: victimAddress.port))
        let hot = (1...12).map { "chat-\($0)" }
        for chat in hot { #expect(await service.get("/v1/chats/\(chat)/participants").status == 200) }

        // Read load through the kill and the failover.
        let stop = Flag()
        let load = Task {
            var answered = 0
            var failures: [String] = []
            while !stop.isSet, answered < 100_000 {
                for chat in hot {
                    let reply = await service.get("/v1/chats/\(chat)/participants")
                    if reply.status != 200 { failures.append("\(chat): \(reply.status) \(reply.json)") }
                    answered += 1
                }
                // A steady load, not all the CPU: other suites run beside this one (under the
                // sanitizers too), and their timing must not suffer from it.
                try? await Task.sleep(for: Self.loadPause)
            }
            return (answered, failures)
        }
        let nodes = await supervisor.clusterNodes ?? []
        let live = try #require(nodes.first { $0.address.port != victimAddress.port })
        let liveKey = try #require(
            (0..<10_000).lazy.map { "live:{\($0)}" }.first { key in
                live.slots.contains { $0.contains(HashSlot(key: key).value) }
            })
        #expect(try await supervisor.send(.set(liveKey, value: Array("1".utf8))).string == "OK")
        await victim.kill()
        #expect(await eventually(timeout: .seconds(5)) { await supervisor.state != .ready }, "the loss is seen")
        // Until the replica is promoted only the dead shard's keys fail; the others are served.
        let replies = try await supervisor.pipeline([.get(liveKey), .get(CoordinationKeys.leader)])
        #expect(replies[0].string == "1", "a live shard answers during the outage: \(replies[0])")
        if await supervisor.state != .ready {
            #expect(replies[1].errorMessage?.hasPrefix("NOTSENT") == true, "\(replies[1])")
        }
        // The replica is promoted after the node timeout; the service follows within a few
        // refreshes of the topology.
        let bound = cluster.nodeTimeout * 5 + .seconds(10)
        let recovered = await eventually(timeout: bound) {
            await service.get("/health", token: nil).json["status"] as? String == "ok"
        }
        stop.set()
        let (answered, failures) = await load.value
        #expect(recovered, "/health ok again within \(bound)")
        #expect(failures.isEmpty, "\(failures.count) of \(answered) hot reads failed: \(failures.prefix(3))")
        #expect(answered > hot.count)
        let newPrimary = try #require(await supervisor.connectedEndpoint(forKey: CoordinationKeys.leader))
        #expect(newPrimary.port != victimAddress.port)

        // Writes reach the new primary.
        #expect(
            try await supervisor.send(.set(CoordinationKeys.prefix + "probe", value: Array("1".utf8))).string == "OK")
        let promoted = try #require(Self.node(cluster, port: newPrimary.port))
        #expect(try await promoted.cli("GET", CoordinationKeys.prefix + "probe") == "1")

        // The lock is taken again (the lease may have been lost with the dead primary's last
        // writes) and a full run goes through on the failed-over shard: no chat left behind.
        #expect(await eventually(timeout: .seconds(20)) { await service.isLeader }, "a leader again")
        let accepted = await service.admin("POST", "/internal/participants/refresh")
        let jobID = try #require(accepted.json["job_id"] as? String, "refresh answered \(accepted.status)")
        let job = try await service.waitForJob(jobID, timeout: .seconds(60))
        #expect(job["state"] as? String == "completed", "\(job)")
        var all = Set<String>()
        for port in await cluster.primaryPorts() {
            all.formUnion(await Self.entryKeys(on: try #require(Self.node(cluster, port: port))))
        }
        #expect(all.count == Self.chats, "every chat refreshed after the failover: \(all.count)")
        await service.close()
        await backends.close()
    }

    @Test func slotsMigratedWhileReadingAndWritingGiveNoErrors() async throws {
        let cluster = try await LocalRedisCluster.start(logger: Self.logger)
        defer { cluster.cleanup() }
        let backends = try await TestBackends.start(chats: Self.chats, logger: Self.logger)
        // No L1: every read goes to Redis, through the migration.
        let service = try await InProcessService(
            backends: backends,
            environment: Self.environment(cluster, extra: ["PARTICIPANTS_L1_SIZE": "0"]),
            logger: Self.logger, readiness: .redis)
        let supervisor = service.application.supervisor
        let chats = (1...Self.chats).map { "chat-\($0)" }
        for chat in chats { #expect(await service.get("/v1/chats/\(chat)/participants").status == 200) }

        let stop = Flag()
        let traffic = Task {
            var operations = 0
            var failures: [String] = []
            var round = 0
            while !stop.isSet, round < 10_000 {
                round += 1
                for chat in chats {
                    let reply = await service.get("/v1/chats/\(chat)/participants")
                    if reply.status != 200 || reply.json["source"] as? String == "upstream" {
                        failures.append("read \(chat): \(reply.status) \(reply.json["source"] ?? "")")
                    }
                    let key = "reshard:{\(chat)}"
                    do {
                        _ = try await supervisor.send(.set(key, value: Array(String(round).utf8)))
                        let value = try await supervisor.send(.get(key)).string
                        if value != String(round) { failures.append("write \(key): read back \(value ?? "nil")") }
                    } catch {
                        failures.append("write \(key): \(error)")
                    }
                    operations += 3
                }
                try? await Task.sleep(for: Self.loadPause)
            }
            return (operations, failures)
        }
        // Move a third of the first primary's slots to the second, keys and all.
        let primaries = await cluster.primaryPorts()
        let from = try #require(Self.node(cluster, port: primaries[0]))
        let to = try #require(Self.node(cluster, port: primaries[1]))
        let fromID = try await from.cli("CLUSTER", "MYID").trimmingCharacters(in: .whitespacesAndNewlines)
        let toID = try await to.cli("CLUSTER", "MYID").trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try await from.cli(
            arguments: [
                "--cluster", "reshard", "127.0.0.1:\(from.port)", "--cluster-from", fromID, "--cluster-to", toID,
                "--cluster-slots", "1800", "--cluster-yes",
            ])
        stop.set()
        let (operations, failures) = await traffic.value
        #expect(failures.isEmpty, "\(failures.count) of \(operations) operations failed: \(failures.prefix(5))")
        #expect(operations > chats.count * 3)
        #expect(await supervisor.state == .ready)
        let nodes = await supervisor.clusterNodes ?? []
        let moved = nodes.first { $0.address.port == to.port }?.slots.reduce(0) { $0 + $1.count } ?? 0
        #expect(moved > 5461 + 1000, "the slot table followed the migration: \(nodes)")
        await service.close()
        await backends.close()
    }

    /// One slot moved by hand, step by step, as `redis-cli --cluster reshard` does for each slot:
    /// while it migrates, a key already moved is answered with `ASK` (followed with `ASKING`), and
    /// once it has moved, with `MOVED` (the table follows).
    @Test func askAndMovedAreFollowedThroughASlotMigration() async throws {
        let cluster = try await LocalRedisCluster.start(logger: Self.logger)
        defer { cluster.cleanup() }
        let loop = EventLoop(name: "cluster-ask")
        let options = RedisConnectionOptions(connectTimeout: .milliseconds(500), commandTimeout: .seconds(1))
        let redisCluster = RedisCluster(
            seeds: cluster.nodes.prefix(1).map { RedisServerAddress(host: "127.0.0.1", port: $0.port) },
            credentials: RedisEndpoint(host: "127.0.0.1", port: 1), loop: loop,
            policy: .init(
                retry: .init(
                    maxRetries: 3, backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(200)),
                    probeInterval: .milliseconds(500)),
                // No periodic read during the test: only redirects correct the table.
                refreshInterval: .seconds(3600)),
            connectionOptions: options, logger: Self.logger)
        let supervisor = RedisSupervisor(
            cluster: redisCluster, loop: loop, connectionOptions: options, logger: Self.logger)
        let runTask = Task { try await redisCluster.run() }
        #expect(await eventually(timeout: .seconds(10)) { await supervisor.state == .ready })

        let moving = "ask:{moving}"
        let slot = HashSlot(key: moving)
        let nodes = await supervisor.clusterNodes ?? []
        let source = try #require(nodes.first { $0.slots.contains { $0.contains(slot.value) } })
        let target = try #require(nodes.first { $0.address != source.address })
        let from = try #require(Self.node(cluster, port: source.address.port))
        let to = try #require(Self.node(cluster, port: target.address.port))
        let fromID = try await from.cli("CLUSTER", "MYID").trimmingCharacters(in: .whitespacesAndNewlines)
        let toID = try await to.cli("CLUSTER", "MYID").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await supervisor.send(.set(moving, value: Array("before".utf8))).string == "OK")

        // Migrating: the key goes over; the source answers ASK for it and for new keys.
        _ = try await to.cli("CLUSTER", "SETSLOT", "\(slot.value)", "IMPORTING", fromID)
        _ = try await from.cli("CLUSTER", "SETSLOT", "\(slot.value)", "MIGRATING", toID)
        _ = try await from.cli("MIGRATE", "127.0.0.1", "\(to.port)", moving, "0", "5000")
        #expect(try await supervisor.send(.get(moving)).string == "before", "ASK followed for a read")
        let fresh = "ask:{moving}:new"
        #expect(try await supervisor.send(.set(fresh, value: Array("new".utf8))).string == "OK")
        let counted = try await to.cli("CLUSTER", "COUNTKEYSINSLOT", "\(slot.value)")
        #expect(
            counted.trimmingCharacters(in: .whitespacesAndNewlines) == "2", "ASK followed for a write: on the target")
        let replies = try await supervisor.pipeline([.get(moving), .get(fresh), .get("ask:{elsewhere}")])
        #expect(replies.prefix(2).map(\.string) == ["before", "new"], "ASK followed inside a pipeline")

        // Moved: every node learns the new owner; the first command is answered MOVED.
        for node in cluster.nodes {
            _ = try? await node.cli("CLUSTER", "SETSLOT", "\(slot.value)", "NODE", toID)
        }
        #expect(try await supervisor.send(.get(moving)).string == "before", "MOVED followed")
        let owner = await supervisor.clusterNodes?.first { $0.slots.contains { $0.contains(slot.value) } }
        #expect(owner?.address == target.address, "the table follows MOVED")
        #expect(await supervisor.connectedEndpoint(forKey: moving)?.port == target.address.port)

        runTask.cancel()
        _ = try? await runTask.value
        loop.stop()
    }
}
