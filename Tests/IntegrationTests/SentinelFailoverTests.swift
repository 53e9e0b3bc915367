import Actors
import ChatService
import Foundation
import Logging
import ChatRuntime
import Testing
import TestSupport

/// Redis Sentinel discovery against real `redis-sentinel` processes: the service follows a
/// failover to the promoted replica, and leaves a master that was demoted but stays reachable.
@Suite("Redis Sentinel", .serialized, .timeLimit(.minutes(3)))
struct SentinelFailoverTests {
    static let logger = Logger(label: "test.sentinel")

    static func readyOn(_ supervisor: RedisSupervisor, port: Int) async -> Bool {
        guard await supervisor.state == .ready else { return false }
        return await supervisor.connectedEndpoint?.port == port
    }

    @Test func theServiceFollowsAFailoverToThePromotedReplica() async throws {
        let cluster = try await SentinelCluster.start()
        defer { cluster.cleanup() }
        // REDIS_URL's host:port is ignored with sentinels: nothing listens on port 1.
        let service = try await InProcessService(
            backends: nil,
            environment: [
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "REDIS_SENTINELS": cluster.sentinelList,
                "REDIS_SENTINEL_MASTER": cluster.masterName,
                "REDIS_RETRY_DELAY": "100ms", "REDIS_MAX_RETRY_DELAY": "500ms", "REDIS_MAX_RETRIES": "3",
                "REDIS_HEALTH_CHECK_INTERVAL": "500ms", "REDIS_CONNECT_TIMEOUT": "500ms", "REDIS_COMMAND_TIMEOUT": "1s",
                "PARTICIPANTS_INTEGRATION_DISABLED": "true",
                "SHUTDOWN_TIMEOUT": "2s",
            ],
            logger: Self.logger, readiness: .started)
        let supervisor = service.application.supervisor
        let log = await StateLog.recording(supervisor)
        let base = service.httpBase

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

        await service.close()
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
        let log = await StateLog.recording(supervisor)

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
        #expect(await eventually(timeout: .seconds(5)) { await supervisor.state == .stopped })
        loop.stop()
    }
}
