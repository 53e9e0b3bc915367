import Actors
import ChatService
import Foundation
import Logging
import Prometheus
import ChatRuntime
import ServiceLifecycle
import Testing
import TestSupport

/// Several whole service stacks in one process (``buildServices``, each with its own loop,
/// supervisor, cache, scheduler and batcher, and its own instance id) against one redis-server
/// and one stub upstream: one leader at a time, takeover when the leader dies, a full run that
/// survives its leader dying, ticks that never run twice, and no leader without Redis.
@Suite("Many instances, one Redis", .serialized, .timeLimit(.minutes(3)))
struct MultiInstanceSyncTests {
    static let logger = Logger(label: "test.multi")
    static let adminToken = "multi-admin-token"
    static let fullRunKey = "participants:v1:{chat-*}"

    /// Set once.
    final class Flag: Sendable {
        private let value = AnnotatedMutex(false)
        var isSet: Bool { value.withLock { $0 } }
        func set() { value.withLock { $0 = true } }
    }

    /// One instance of the service.
    final class Stack: Sendable {
        let name: String
        let loop: EventLoop
        let application: ChatServiceApplication
        let group: ServiceGroup
        let groupTask: Task<Void, Never>
        private let ended = Flag()
        let base: String
        /// This instance's chat store, removed when the instance stops.
        private let sqlitePath: String

        init(
            _ name: String, redis: RedisServer, stubPort: Int, clock: ManualSyncClock, environment extra: [String: String],
            tune: @escaping @Sendable (inout CoordinationSettings) -> Void
        ) async throws {
            self.name = name
            let sqlitePath = temporarySQLitePath()
            self.sqlitePath = sqlitePath
            loop = EventLoop(name: "stack-\(name)")
            var environment = [
                "INSTANCE_ID": name,
                "REDIS_URL": redis.url,
                "REDIS_RETRY_DELAY": "50ms", "REDIS_MAX_RETRY_DELAY": "100ms", "REDIS_MAX_RETRIES": "2",
                "REDIS_HEALTH_CHECK_INTERVAL": "200ms", "REDIS_CONNECT_TIMEOUT": "500ms", "REDIS_COMMAND_TIMEOUT": "500ms",
                "PARTICIPANTS_API_URL": "http://127.0.0.1:\(stubPort)",
                "PARTICIPANTS_MAX_API_TIMEOUT": "1s",
                "PARTICIPANTS_BATCH_SIZE": "10",
                "PARTICIPANTS_LEADER_LOCK_TTL": "3s",
                "HTTP_HOST": "127.0.0.1", "GRPC_HOST": "127.0.0.1", "GRPC_PORT": "0", "HTTP_PORT": "0",
                "ADMIN_TOKEN": MultiInstanceSyncTests.adminToken,
                "SHUTDOWN_TIMEOUT": "3s", "CHAT_SQLITE_PATH": sqlitePath,
            ]
            environment.merge(extra) { $1 }
            let configuration = try ServiceConfiguration(environment: environment)
            application = try await buildServices(
                configuration: configuration, loop: loop, metrics: PrometheusCollectorRegistry(), syncClock: clock,
                tuneCoordination: { settings in
                    settings.maintenanceInterval = .milliseconds(100)
                    settings.pollInterval = .milliseconds(50)
                    tune(&settings)
                },
                logger: MultiInstanceSyncTests.logger)
            group = application.makeServiceGroup(signals: [], logger: MultiInstanceSyncTests.logger)
            let group = group
            let ended = ended
            groupTask = Task {
                try? await group.run()
                ended.set()
            }
            base = "http://127.0.0.1:\(try await application.frontend.boundPort())"
            let supervisor = application.supervisor
            _ = await eventually(timeout: .seconds(10)) { await supervisor.state == .ready }
        }

        /// Dies: every task cancelled, the Redis connection closed, nothing released (the lock
        /// expires after its TTL, the batches it held stay pending).
        func kill() async {
            groupTask.cancel()
            _ = await eventually(timeout: .seconds(15)) { self.ended.isSet }
            loop.stop()
            removeTemporarySQLite(sqlitePath)
        }

        /// Graceful shutdown.
        func close() async {
            await group.triggerGracefulShutdown()
            _ = await eventually(timeout: .seconds(15)) { self.ended.isSet }
            loop.stop()
            removeTemporarySQLite(sqlitePath)
        }

        func admin(_ method: String, _ path: String) async -> [String: Any] {
            let headers = ["Authorization": "Bearer \(MultiInstanceSyncTests.adminToken)"]
            guard let reply = await httpRequest(method, base + path, headers: headers, timeout: .seconds(10)) else { return [:] }
            return (try? JSONSerialization.jsonObject(with: Data(reply.body.utf8))) as? [String: Any] ?? [:]
        }

        func coordination() async -> [String: Any] {
            let status = await admin("GET", "/internal/participants/status")
            return (status["sync"] as? [String: Any])?["coordination"] as? [String: Any] ?? [:]
        }

        var isLeader: Bool {
            get async { await coordination()["is_leader"] as? Bool == true }
        }

        func job(_ id: String) async -> [String: Any] {
            await admin("GET", "/internal/participants/refresh/\(id)")
        }
    }

    /// A redis-server, a stub upstream and the stacks.
    final class Cluster: Sendable {
        let redis: RedisServer
        let stubLoop: EventLoop
        let stub: StubUpstream
        let stubPort: Int
        let clock: ManualSyncClock
        let stacks: AnnotatedMutex<[Stack]>

        init(
            chats: Int, instances: Int, clockStart: Date = Date(), environment: [String: String] = [:],
            redisConfig: [String] = [], tune: @escaping @Sendable (inout CoordinationSettings) -> Void = { _ in }
        ) async throws {
            redis = try await RedisServer.start(extraConfig: redisConfig)
            stubLoop = EventLoop(name: "multi-stub")
            stub = StubUpstream(
                settings: .init(chats: chats, participantsPerChat: 2, maxHang: .seconds(30)), loop: stubLoop,
                logger: MultiInstanceSyncTests.logger)
            stubPort = try await stub.start(port: 0)
            clock = ManualSyncClock(now: clockStart)
            stacks = AnnotatedMutex([])
            for index in 0..<instances {
                let stack = try await Stack(
                    "instance-\(index)", redis: redis, stubPort: stubPort, clock: clock, environment: environment, tune: tune)
                stacks.withLock { $0.append(stack) }
            }
        }

        var all: [Stack] { stacks.withLock { $0 } }

        /// The stacks that say they lead.
        func leaders(among stacks: [Stack]? = nil) async -> [Stack] {
            var leading: [Stack] = []
            for stack in stacks ?? all where await stack.isLeader { leading.append(stack) }
            return leading
        }

        /// Waits until exactly one of `stacks` leads.
        func soleLeader(among stacks: [Stack]? = nil, timeout: Duration = .seconds(10)) async -> Stack? {
            var leader: Stack?
            _ = await eventually(timeout: timeout) {
                let leading = await self.leaders(among: stacks)
                leader = leading.count == 1 ? leading[0] : nil
                return leader != nil
            }
            return leader
        }

        func keyCount(_ pattern: String) async -> Int {
            let output = (try? await redis.cli("--scan", "--pattern", pattern)) ?? ""
            return output.split(separator: "\n").filter { !$0.isEmpty }.count
        }

        /// How many batches of the shared stream `stack` has read and not acknowledged.
        func pending(of stack: Stack) async throws -> Int {
            let summary = try await redis.cli(
                "XPENDING", CoordinationKeys.batches, CoordinationKeys.group, "-", "+", "1000", stack.name)
            // Four lines per entry: id, consumer, idle time, deliveries.
            return summary.split(separator: "\n").count / 4
        }

        func fullRunIDs() async -> [String] {
            let output = (try? await redis.cli("ZRANGE", CoordinationKeys.runs, "0", "-1")) ?? ""
            return output.split(separator: "\n").map(String.init).filter { $0.hasPrefix("full-") }
        }

        func close(except dead: [Stack] = []) async {
            for stack in all where !dead.contains(where: { $0 === stack }) { await stack.close() }
            await stub.shutdown()
            stubLoop.stop()
            redis.cleanup()
        }
    }

    static func waitForEnd(of id: String, on stack: Stack, timeout: Duration) async -> [String: Any] {
        var last: [String: Any] = [:]
        _ = await eventually(timeout: timeout) {
            last = await stack.job(id)
            return (last["state"] as? String).map { $0 != "running" && $0 != "queued" } ?? false
        }
        return last
    }

    static func counts(_ job: [String: Any]) -> [String: Any] {
        job["counts"] as? [String: Any] ?? [:]
    }

    @Test func oneLeaderAtATimeAndAnotherTakesOverWithinTheTTLWhenItDies() async throws {
        let cluster = try await MultiInstanceSyncTests.Cluster(chats: 10, instances: 3)
        let first = try #require(await cluster.soleLeader())
        let firstFence = try #require(await first.coordination()["fence"] as? Int)
        // Every instance sees the same leader and fence (a follower learns of the leader on its
        // next look at the lock), and keeps seeing one leader.
        for stack in cluster.all {
            var leader: [String: Any]?
            _ = await eventually(timeout: .seconds(10)) {
                leader = await stack.coordination()["leader"] as? [String: Any]
                return leader?["instance_id"] as? String == first.name
            }
            #expect(leader?["instance_id"] as? String == first.name)
            #expect(leader?["fence"] as? Int == firstFence)
            #expect(await stack.coordination()["instance_id"] as? String == stack.name)
        }
        for _ in 0..<5 {
            try await Task.sleep(for: .milliseconds(300))
            #expect(await cluster.leaders().map(\.name) == [first.name])
        }

        let died = ContinuousClock.now
        await first.kill()
        let survivors = cluster.all.filter { $0 !== first }
        let second = try #require(await cluster.soleLeader(among: survivors, timeout: .seconds(15)))
        // Within the 3 s TTL plus generous slack for a loaded machine (a 1 s TTL could lapse
        // between renewals when the machine was busy).
        #expect(ContinuousClock.now - died < .seconds(12))
        let secondFence = try #require(await second.coordination()["fence"] as? Int)
        #expect(secondFence > firstFence)
        for stack in survivors {
            #expect((await stack.coordination()["leader"] as? [String: Any])?["instance_id"] as? String == second.name)
        }
        await cluster.close(except: [first])
    }

    @Test func aFullRunSurvivesItsLeaderDyingMidRun() async throws {
        // 3000 chats are 300 batches of 10; the leader lists at most 4 batches per live
        // instance ahead of the batchers, so it is still listing when it dies. A short stream
        // (trimmed to about 40 entries) shows trimming never loses an unprocessed batch.
        // Upstream calls may take 5 s here, so the leader's batches can be held unanswered (the
        // stub's hang) while it dies; batches are still claimed after 3 s idle.
        let chats = 3000
        let cluster = try await MultiInstanceSyncTests.Cluster(
            chats: chats, instances: 3, environment: ["PARTICIPANTS_MAX_API_TIMEOUT": "5s"],
            redisConfig: ["stream-node-max-entries 5"]
        ) { settings in
            settings.backlogPerInstance = 4
            settings.streamMaxLength = 40
            settings.claimMinIdle = .seconds(3)
        }
        await cluster.stub.updateFaults { $0.latency = .milliseconds(60) }
        let leader = try #require(await cluster.soleLeader())
        let follower = try #require(cluster.all.first { $0 !== leader })
        // Asked of a follower: the request is recorded in Redis and the leader produces it.
        let jobID = try #require(await follower.admin("POST", "/internal/participants/refresh")["job_id"] as? String)
        let underWay = await eventually(timeout: .seconds(20)) {
            let done = MultiInstanceSyncTests.counts(await follower.job(jobID))["batches_done"] as? Int ?? 0
            let held = (await leader.coordination()["consumer"] as? [String: Any])?["held"] as? Int ?? 0
            return done >= 10 && held > 0
        }
        #expect(underWay)
        let before = MultiInstanceSyncTests.counts(await follower.job(jobID))
        #expect((before["batches_planned"] as? Int ?? 0) < chats / 10)

        // The leader must die holding batches, or there is nothing for the others to claim. A
        // batch finishes within milliseconds, so upstream is made to hang: what the leader holds
        // then stays held until it dies. It may hold none at that moment (its share of the
        // stream taken by the others); then upstream is released for a while and hung again.
        var heldByTheLeader = 0
        for _ in 0..<20 {
            await cluster.stub.updateFaults { $0.hang = true }
            try await Task.sleep(for: .milliseconds(300))
            heldByTheLeader = try await cluster.pending(of: leader)
            if heldByTheLeader > 0 { break }
            await cluster.stub.updateFaults { $0.hang = false }
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(heldByTheLeader > 0)

        let died = ContinuousClock.now
        await leader.kill()
        await cluster.stub.updateFaults { $0.hang = false }
        let pendingOfTheDead = try await cluster.pending(of: leader)
        let survivors = cluster.all.filter { $0 !== leader }
        let next = try #require(await cluster.soleLeader(among: survivors, timeout: .seconds(15)))
        #expect(ContinuousClock.now - died < .seconds(12))

        let job = await MultiInstanceSyncTests.waitForEnd(of: jobID, on: next, timeout: .seconds(90))
        #expect(job["state"] as? String == "completed")
        let counts = MultiInstanceSyncTests.counts(job)
        #expect(counts["chats_planned"] as? Int == chats)
        #expect(counts["chats_refreshed"] as? Int == chats)
        #expect(counts["batches_planned"] as? Int == chats / 10)
        #expect(job["adoptions"] as? Int == 1)
        #expect(job["leader"] as? String == next.name)
        #expect(await cluster.keyCount(MultiInstanceSyncTests.fullRunKey) == chats)

        // What the dead instance held was claimed by the others; nothing is left pending.
        var claimed = 0
        for stack in survivors {
            claimed += (await stack.coordination()["consumer"] as? [String: Any])?["batches_claimed"] as? Int ?? 0
        }
        #expect(pendingOfTheDead > 0)
        #expect(claimed >= pendingOfTheDead)
        let stream = await next.coordination()["stream"] as? [String: Any]
        #expect(stream?["pending"] as? Int == 0)
        #expect((stream?["length"] as? Int ?? .max) <= 45)
        // Every surviving instance took a share of the batches.
        for stack in survivors {
            let settled = (await stack.coordination()["consumer"] as? [String: Any])?["batches_settled"] as? Int ?? 0
            #expect(settled > 0, "\(stack.name) processed no batch")
        }
        await cluster.close(except: [leader])
    }

    @Test func aScheduledRunIsRunOnceEvenAcrossALeaderChange() async throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.date(from: DateComponents(year: 2026, month: 11, day: 25, hour: 2, minute: 59))!
        let chats = 250
        let cluster = try await MultiInstanceSyncTests.Cluster(chats: chats, instances: 2, clockStart: start)
        let leader = try #require(await cluster.soleLeader())
        // Both instances sleep towards 03:00 (and towards their interval run).
        #expect(await cluster.clock.waitForSleepers(atLeast: 4))
        cluster.clock.set(start.addingTimeInterval(60))
        let allWritten = await eventually(timeout: .seconds(30)) {
            await cluster.keyCount(MultiInstanceSyncTests.fullRunKey) == chats
        }
        #expect(allWritten)
        let runs = await cluster.fullRunIDs()
        #expect(runs.count == 1)
        let runID = try #require(runs.first)
        #expect(runID.hasPrefix("full-20261125T030000Z-"))
        let ended = await MultiInstanceSyncTests.waitForEnd(of: runID, on: leader, timeout: .seconds(20))
        #expect(ended["state"] as? String == "completed")
        #expect(ended["trigger"] as? String == "schedule")
        // 250 chats are 2 pages of upstream's list (160 chats a page: 16 batches of 10, one append
        // script each): listed once, by one leader.
        #expect(await cluster.stub.statistics.requests(.listChats) == 2)

        // The follower saw 03:00 too. Leading after the leader's death, it finds the tick
        // claimed and does not run it again.
        await leader.kill()
        let follower = try #require(cluster.all.first { $0 !== leader })
        #expect(await eventually(timeout: .seconds(15)) { await follower.isLeader })
        let ticksSettled = await eventually(timeout: .seconds(5)) {
            (await follower.coordination()["pending_ticks"] as? [String: Any])?.isEmpty == true
        }
        #expect(ticksSettled)
        #expect(await cluster.fullRunIDs().count == 1)
        #expect(await cluster.stub.statistics.requests(.listChats) == 2)
        await cluster.close(except: [leader])
    }

    @Test func withoutRedisNobodyLeadsAndTheScheduledRunWaitsForIt() async throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.date(from: DateComponents(year: 2026, month: 11, day: 25, hour: 2, minute: 59))!
        let chats = 120
        let cluster = try await MultiInstanceSyncTests.Cluster(
            chats: chats, instances: 2, clockStart: start, redisConfig: ["appendonly yes", "appendfsync always"])
        _ = try #require(await cluster.soleLeader())
        #expect(await cluster.clock.waitForSleepers(atLeast: 4))

        await cluster.redis.kill()
        let nobody = await eventually(timeout: .seconds(10)) { await cluster.leaders().isEmpty }
        #expect(nobody)
        cluster.clock.set(start.addingTimeInterval(60))
        // 03:00 came while nobody could lead: every instance keeps the tick for later.
        for stack in cluster.all {
            let kept = await eventually(timeout: .seconds(5)) {
                (await stack.coordination()["pending_ticks"] as? [String: Any])?["full"] != nil
            }
            #expect(kept, "\(stack.name) did not keep the 03:00 tick")
        }
        #expect(await cluster.stub.statistics.requests(.listChats) == 0)

        try await cluster.redis.restart()
        _ = try #require(await cluster.soleLeader(timeout: .seconds(20)))
        let allWritten = await eventually(timeout: .seconds(30)) {
            await cluster.keyCount(MultiInstanceSyncTests.fullRunKey) == chats
        }
        #expect(allWritten)
        #expect(await cluster.fullRunIDs().count == 1)
        // 120 chats are one page, listed once.
        #expect(await cluster.stub.statistics.requests(.listChats) == 1)
        await cluster.close()
    }
}
