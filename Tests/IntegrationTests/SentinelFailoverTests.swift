import Actors
import ChatService
import Foundation
import Logging
import Prometheus
import ChatRuntime
import ServiceLifecycle
import Testing
import TestSupport

/// Redis Sentinel discovery against real `redis-sentinel` processes: the service follows a
/// failover to the promoted replica, and leaves a master that was demoted but stays reachable.
@Suite("Redis Sentinel", .serialized, .timeLimit(.minutes(3)))
struct SentinelFailoverTests {
    static let logger = Logger(label: "test.sentinel")

    /// Records every state a supervisor publishes.
    actor StateLog {
        var states: [RedisState] = []
        func append(_ state: RedisState) { states.append(state) }
        func clear() { states.removeAll() }
    }

    static func record(_ supervisor: RedisSupervisor) async -> StateLog {
        let log = StateLog()
        let stream = await supervisor.stateChanges()
        Task { for await change in stream { await log.append(change.to) } }
        return log
    }

    static func readyOn(_ supervisor: RedisSupervisor, port: Int) async -> Bool {
        guard await supervisor.state == .ready else { return false }
        return await supervisor.connectedEndpoint?.port == port
    }

    @Test func theServiceFollowsAFailoverToThePromotedReplica() async throws {
        let cluster = try await SentinelCluster.start()
        defer { cluster.cleanup() }
        let loop = EventLoop(name: "sentinel-service")
        let sqlitePath = temporarySQLitePath()
        defer { removeTemporarySQLite(sqlitePath) }
        // REDIS_URL's host:port is ignored with sentinels: nothing listens on port 1.
        let configuration = try ServiceConfiguration(environment: [
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "REDIS_SENTINELS": cluster.sentinelList,
            "REDIS_SENTINEL_MASTER": cluster.masterName,
            "REDIS_RETRY_DELAY": "100ms", "REDIS_MAX_RETRY_DELAY": "500ms", "REDIS_MAX_RETRIES": "3",
            "REDIS_HEALTH_CHECK_INTERVAL": "500ms", "REDIS_CONNECT_TIMEOUT": "500ms", "REDIS_COMMAND_TIMEOUT": "1s",
            "PARTICIPANTS_INTEGRATION_DISABLED": "true",
            "HTTP_HOST": "127.0.0.1", "GRPC_HOST": "127.0.0.1", "GRPC_PORT": "0", "HTTP_PORT": "0", "SHUTDOWN_TIMEOUT": "2s",
            "CHAT_SQLITE_PATH": sqlitePath,
        ])
        let application = try await buildServices(
            configuration: configuration, loop: loop, metrics: PrometheusCollectorRegistry(), logger: Self.logger)
        let group = application.makeServiceGroup(signals: [], logger: Self.logger)
        let groupTask = Task { try await group.run() }
        let supervisor = application.supervisor
        let log = await Self.record(supervisor)
        let base = "http://127.0.0.1:\(try await application.frontend.boundPort())"

        #expect(await eventually(timeout: .seconds(10)) { await Self.readyOn(supervisor, port: cluster.master.port) })
        #expect(try await supervisor.send(.set("sentinel:before", value: Array("1".utf8))).string == "OK")

        await cluster.master.kill()
        let followed = await eventually(timeout: .seconds(30)) { await Self.readyOn(supervisor, port: cluster.replica.port) }
        let states = await log.states
        #expect(followed, "states \(states)\n\(cluster.sentinelLogTails())")
        #expect(states.contains { if case .reconnecting = $0 { true } else { false } })
        #expect(states.last == .ready)
        #expect(await cluster.masterPort() == cluster.replica.port)

        // The new master takes writes and serves reads.
        #expect(try await supervisor.send(.set("sentinel:after", value: Array("2".utf8))).string == "OK")
        #expect(try await supervisor.send(.get("sentinel:after")).string == "2")
        let health = await httpGet(base + "/health")
        #expect(health?.status == 200)
        #expect(health?.body.contains("\"ready\"") == true)

        await group.triggerGracefulShutdown()
        _ = try? await groupTask.value
        loop.stop()
    }

    @Test func aDemotedMasterThatStaysReachableIsLeft() async throws {
        let cluster = try await SentinelCluster.start()
        defer { cluster.cleanup() }
        let elsewhere = try await RedisServer.start()
        defer { elsewhere.cleanup() }
        let loop = EventLoop(name: "sentinel-demotion")
        let supervisor = RedisSupervisor(
            endpoint: RedisEndpoint(host: "127.0.0.1", port: 1), loop: loop,
            policy: .init(maxRetries: 2, backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(100)), probeInterval: .milliseconds(300)),
            connectionOptions: .init(connectTimeout: .milliseconds(500), commandTimeout: .seconds(1)),
            sentinel: RedisSentinelSettings(
                sentinels: cluster.sentinelPorts.map { RedisServerAddress(host: "127.0.0.1", port: $0) }, masterName: cluster.masterName),
            random: SeededRandom(seed: 5), logger: Self.logger)
        let monitor = HealthMonitor(supervisor: supervisor, loop: loop, interval: .seconds(3600), lateAfter: .seconds(1), logger: Self.logger)
        let runTask = Task { try await supervisor.run() }
        let master = cluster.master
        #expect(await eventually(timeout: .seconds(10)) { await Self.readyOn(supervisor, port: master.port) })
        let log = await Self.record(supervisor)

        // Demoted behind the sentinels' back (they name it master for a while yet): a write is
        // refused with READONLY, and the supervisor leaves it.
        _ = try await master.cli("REPLICAOF", "127.0.0.1", "\(elsewhere.port)")
        await #expect(throws: RedisError.self) { try await supervisor.send(.set("k", value: Array("v".utf8))) }
        #expect(await eventually(timeout: .seconds(5)) { await supervisor.state != .ready })
        // Every reconnect reaches it again, but ROLE says replica: it is never taken as ready.
        #expect(await eventually(timeout: .seconds(10)) { await supervisor.state == .unavailable })
        let statesWhileDemoted = await log.states
        #expect(!statesWhileDemoted.dropFirst().contains(.ready), "\(statesWhileDemoted)")

        _ = try await master.cli("REPLICAOF", "NO", "ONE")
        #expect(await eventually(timeout: .seconds(10)) { await Self.readyOn(supervisor, port: master.port) })

        // Demoted again with no write to notice it: the health check's ROLE does.
        _ = try await master.cli("REPLICAOF", "127.0.0.1", "\(elsewhere.port)")
        await monitor.checkOnce()
        #expect(await supervisor.state != .ready)
        _ = try await master.cli("REPLICAOF", "NO", "ONE")
        #expect(await eventually(timeout: .seconds(10)) { await Self.readyOn(supervisor, port: master.port) })

        runTask.cancel()
        _ = await eventually(timeout: .seconds(5)) { await supervisor.state == .stopped }
        loop.stop()
    }
}
