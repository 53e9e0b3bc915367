import Logging
import Testing
import TestSupport

@testable import Actors
@testable import ChatRuntime

/// The supervisor against a real redis-server that is killed, frozen and restarted.
@Suite("RedisSupervisor", .serialized, .timeLimit(.minutes(2)))
struct RedisSupervisorTests {
    static let policy = SupervisorStateMachine.Policy(
        maxRetries: 3,
        backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(200)),
        probeInterval: .milliseconds(300))

    struct Harness {
        let loop: EventLoop
        let supervisor: RedisSupervisor
        let log: StateLog
        let runTask: Task<Void, any Error>

        init(redisPort: Int, commandTimeout: Duration = .milliseconds(400)) async {
            loop = EventLoop(name: "supervisor-test")
            let endpoint = try! RedisEndpoint(url: "redis://127.0.0.1:\(redisPort)/0")
            supervisor = RedisSupervisor(
                endpoint: endpoint, loop: loop, policy: RedisSupervisorTests.policy,
                connectionOptions: RedisConnectionOptions(connectTimeout: .milliseconds(400), commandTimeout: commandTimeout),
                random: SeededRandom(seed: 7), logger: Logger(label: "test"))
            log = await StateLog.recording(supervisor)
            let supervisor = supervisor
            runTask = Task { try await supervisor.run() }
        }

        func waitFor(_ state: RedisState, timeout: Duration = .seconds(10)) async -> Bool {
            await eventually(timeout: timeout) { await supervisor.state == state }
        }

        func stop() async {
            runTask.cancel()
            #expect(await eventually(timeout: .seconds(5)) { await supervisor.state == .stopped })
            loop.stop()
        }
    }

    @Test func killedRedisFailsPendingCommandsThenReconnectsAfterRestart() async throws {
        let redis = try await RedisServer.start()
        defer { redis.cleanup() }
        let harness = await Harness(redisPort: redis.port, commandTimeout: .seconds(5))
        #expect(await harness.waitFor(.ready))

        // A command is pending when Redis dies: a BLPOP that nothing answers, which Redis
        // reports as a blocked client once it has it (the server itself stays responsive).
        let supervisor = harness.supervisor
        let pending = Task { try await supervisor.send(RedisCommand("BLPOP", ["never-pushed", "30"])) }
        let blocked = await eventually(timeout: .seconds(5)) {
            (try? await redis.cli("INFO", "clients"))?.contains("blocked_clients:1") == true
        }
        try #require(blocked)
        await redis.kill()
        await #expect(throws: (any Error).self) { try await pending.value }

        #expect(await harness.waitFor(.unavailable))
        let states = await harness.log.states
        #expect(states.contains(.reconnecting(attempt: 1)))
        #expect(states.contains(.reconnecting(attempt: 3)))
        // While not ready, commands fail at once instead of waiting.
        await #expect(throws: RedisNotReadyError.self) { try await supervisor.send(.ping) }

        try await redis.restart()
        #expect(await harness.waitFor(.ready))
        #expect(try await supervisor.send(.ping).string == "PONG")
        await harness.stop()
    }

    @Test func frozenRedisFailsByTimeoutAndComesBackWhenThawed() async throws {
        let redis = try await RedisServer.start()
        defer { redis.cleanup() }
        let harness = await Harness(redisPort: redis.port)
        #expect(await harness.waitFor(.ready))
        let monitor = HealthMonitor(
            supervisor: harness.supervisor, loop: harness.loop, interval: .seconds(3600),
            lateAfter: .milliseconds(400), logger: Logger(label: "test"))

        redis.freeze()
        // A command on a frozen Redis fails by its timeout, never hangs.
        await #expect(throws: (any Error).self) { try await harness.supervisor.send(.ping) }
        await monitor.checkOnce()
        #expect(await eventually(timeout: .seconds(5)) { await harness.supervisor.state != .ready })

        redis.thaw()
        #expect(await harness.waitFor(.ready))
        #expect(try await harness.supervisor.send(.ping).string == "PONG")
        await harness.stop()
    }

    @Test func subscribersSeeEveryTransitionAndTheStreamEndsOnShutdown() async throws {
        let redis = try await RedisServer.start()
        defer { redis.cleanup() }
        let harness = await Harness(redisPort: redis.port)
        #expect(await harness.waitFor(.ready))
        let second = await harness.supervisor.stateChanges()
        let collected = Task {
            var states: [RedisState] = []
            for await change in second { states.append(change.to) }
            return states
        }
        await redis.kill()
        #expect(await harness.waitFor(.unavailable))
        await harness.stop()
        let states = await collected.value
        #expect(states.first == .ready)
        #expect(states.contains(.reconnecting(attempt: 1)))
        #expect(states.contains(.unavailable))
        #expect(states.last == .stopped)
    }
}
