import Logging
import ServiceLifecycleTestKit
import TestSupport
import Testing

@testable import Actors
@testable import ChatRuntime

/// Leader election against a real redis-server: one leader at a time, fencing tokens that only
/// grow, takeover after a leader dies (within the lock's TTL), release on shutdown, and no
/// leader at all while Redis is away.
@Suite("Leader election", .serialized, .timeLimit(.minutes(2)))
struct LeaderElectionTests {
    static let logger = Logger(label: "test.election")

    /// One instance's supervisor and elector on their own loop. The elector runs under
    /// ServiceLifecycleTestKit's graceful-shutdown manager, so ``shutdown()`` is the graceful
    /// shutdown a ServiceGroup gives it on SIGTERM.
    final class Node: Sendable {
        let loop: EventLoop
        let supervisor: RedisSupervisor
        let elector: LeaderElector
        let supervisorTask: Task<Void, any Error>
        let electorTask: Task<Void, Never>
        private let shutdownTrigger = TriggerBox()

        init(
            _ name: String, redis: RedisServer, ttl: Duration, commandTimeout: Duration = .milliseconds(400)
        ) async throws {
            loop = EventLoop(name: "election-\(name)")
            supervisor = RedisSupervisor(
                endpoint: redis.endpoint(), loop: loop,
                policy: .init(
                    maxRetries: 2, backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(100)),
                    probeInterval: .milliseconds(200)),
                connectionOptions: RedisConnectionOptions(
                    connectTimeout: .milliseconds(400), commandTimeout: commandTimeout),
                logger: LeaderElectionTests.logger)
            elector = LeaderElector(
                supervisor: supervisor, loop: loop, instanceID: name, ttl: ttl, logger: LeaderElectionTests.logger)
            let supervisor = supervisor
            let elector = elector
            supervisorTask = Task { try await supervisor.run() }
            let shutdownTrigger = shutdownTrigger
            electorTask = Task {
                await testGracefulShutdown { trigger in
                    shutdownTrigger.value.withLock { $0 = trigger }
                    await elector.run()
                }
            }
            try #require(
                await eventually(timeout: .seconds(10)) { await supervisor.state == .ready }, "Redis was not ready")
        }

        var lease: LeaderLease? {
            get async { await elector.lease }
        }

        /// Dies without releasing anything: the elector stops, the connection closes.
        func kill() async {
            electorTask.cancel()
            supervisorTask.cancel()
            await electorTask.value
            #expect(await eventually(timeout: .seconds(5)) { await self.supervisor.state == .stopped })
            loop.stop()
        }

        /// Shuts down gracefully: the elector releases the lock and returns, then the rest stops.
        func shutdown() async throws {
            try #require(await eventually(timeout: .seconds(5)) { self.shutdownTrigger.value.withLock { $0 != nil } })
            shutdownTrigger.value.withLock { $0 }?.triggerGracefulShutdown()
            await electorTask.value
            await kill()
        }
    }

    /// The trigger of a node's graceful shutdown, handed out by `testGracefulShutdown`.
    final class TriggerBox: Sendable {
        let value = AnnotatedMutex<GracefulShutdownTestTrigger?>(nil)
    }

    static func leaders(_ nodes: [Node]) async -> [Node] {
        var leading: [Node] = []
        for node in nodes where await node.lease != nil { leading.append(node) }
        return leading
    }

    /// Waits until exactly one of `nodes` leads; returns it.
    static func soleLeader(of nodes: [Node], timeout: Duration = .seconds(10)) async -> Node? {
        var leader: Node?
        let found = await eventually(timeout: timeout) {
            let leading = await leaders(nodes)
            leader = leading.count == 1 ? leading[0] : nil
            return leader != nil
        }
        return found ? leader : nil
    }

    @Test func oneLeaderAtATimeAndTheNextTakesOverWithinTheTTLWhenItDies() async throws {
        let redis = try await RedisServer.start()
        defer { redis.cleanup() }
        // 6 s, renewed every 2 s: this test asserts the leader never loses its lock by
        // accident, so a loaded CI machine must not be able to starve it of renewals for a whole
        // TTL. A 1 s TTL lapsed under parallel suites; a 3 s one under AddressSanitizer in CI.
        let ttl = Duration.seconds(6)
        var nodes: [Node] = []
        for name in ["a", "b", "c"] {
            nodes.append(try await Node(name, redis: redis, ttl: ttl, commandTimeout: .seconds(1)))
        }

        let first = try #require(await Self.soleLeader(of: nodes))
        let firstLease = try #require(await first.lease)
        #expect(firstLease.fence == 1)
        #expect(firstLease.value.hasPrefix("\(first.elector.instanceID):"))
        #expect(try await redis.cli("GET", "participants:v2:{sync}:leader") == firstLease.value)
        // Renewed: through four renewals (more than a TTL) the lock keeps its one holder, which
        // still leads alone with the same fence.
        let held = await redis.watchLeaderLock(renewals: 4)
        #expect(held == [firstLease.value])
        let leading = await Self.leaders(nodes)
        #expect(leading.count == 1 && leading.first === first)
        #expect(await first.lease?.fence == 1)

        // The leader dies without releasing: another takes over once the lock expires.
        let died = ContinuousClock.now
        await first.kill()
        let survivors = nodes.filter { $0 !== first }
        let second = try #require(await Self.soleLeader(of: survivors, timeout: ttl * 6))
        // Generous bound: the TTL plus a try every third of it plus slack for a busy machine.
        #expect(ContinuousClock.now - died < ttl * 5)
        let secondLease = try #require(await second.lease)
        #expect(secondLease.fence == 2)
        #expect(try await redis.cli("GET", "participants:v2:{sync}:fence") == "2")

        // Shut down gracefully, the leader deletes its lock (compare-and-delete) at once.
        #expect(await second.elector.release())
        #expect(try await redis.cli("GET", "participants:v2:{sync}:leader") != secondLease.value)
        await second.kill()
        let last = try #require(survivors.first { $0 !== second })
        #expect(await eventually(timeout: .seconds(15)) { await last.lease?.fence == 3 })
        // Graceful shutdown releases the lock at once, long before its TTL would free it.
        try await last.shutdown()
        #expect(try await redis.cli("EXISTS", "participants:v2:{sync}:leader") == "0")
    }

    @Test func aLeaderWhoseLockWasTakenStepsDownAtItsNextRenewal() async throws {
        let redis = try await RedisServer.start()
        defer { redis.cleanup() }
        let node = try await Node("a", redis: redis, ttl: .seconds(3))
        #expect(await eventually(timeout: .seconds(5)) { await node.lease != nil })
        // Someone else holds the lock now (e.g. after a partition healed).
        _ = try await redis.cli("SET", "participants:v2:{sync}:leader", "intruder:1", "PX", "60000")
        #expect(await eventually(timeout: .seconds(5)) { await node.lease == nil })
        #expect(try await redis.cli("GET", "participants:v2:{sync}:leader") == "intruder:1")
        // Once free again, it leads again under a new fence.
        _ = try await redis.cli("DEL", "participants:v2:{sync}:leader")
        #expect(await eventually(timeout: .seconds(5)) { await node.lease?.fence == 2 })
        try await node.shutdown()
    }

    @Test func withoutRedisNobodyLeadsAndALeaderIsBackOnceRedisIs() async throws {
        let redis = try await RedisServer.start(extraConfig: ["appendonly yes", "appendfsync always"])
        defer { redis.cleanup() }
        let ttl = Duration.seconds(1)
        let nodes = [try await Node("a", redis: redis, ttl: ttl), try await Node("b", redis: redis, ttl: ttl)]
        let leader = try #require(await Self.soleLeader(of: nodes))
        let fence = try #require(await leader.lease?.fence)

        await redis.kill()
        // The leader cannot renew: it gives the lease up once the TTL has passed.
        #expect(await eventually(timeout: ttl * 5) { await Self.leaders(nodes).isEmpty })
        // Every node has given Redis up (its retries spent), so every acquisition fails at once;
        // nobody leads meanwhile.
        #expect(
            await eventually(timeout: .seconds(10)) {
                for node in nodes where await node.supervisor.state != .unavailable { return false }
                return true
            })
        #expect(await Self.leaders(nodes).isEmpty)

        try await redis.restart()
        let next = try #require(await Self.soleLeader(of: nodes, timeout: .seconds(15)))
        // Exactly one acquisition since the outage (the fence survived it, AOF): nobody took the
        // lock while Redis was away.
        #expect(try #require(await next.lease?.fence) == fence + 1)
        for node in nodes { try await node.shutdown() }
    }
}
