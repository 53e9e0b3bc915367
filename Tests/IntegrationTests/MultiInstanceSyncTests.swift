import Actors
import ChatRuntime
import ChatService
import Foundation
import Logging
import ServiceLifecycle
import StubUpstream
import TestSupport
import Testing

/// Several whole services in one process (``InProcessService``, each with its own loop,
/// supervisor, cache, scheduler and batcher, and its own instance id) against one redis-server
/// and one stub upstream: one leader at a time, takeover when the leader dies, a full run that
/// survives its leader dying, ticks that never run twice, and no leader without Redis.
@Suite("Many instances, one Redis", .serialized, .timeLimit(.minutes(3)))
struct MultiInstanceSyncTests {
    static let logger = Logger(label: "test.multi")
    static let fullRunKey = "participants:v1:{chat-*}"

    /// A redis-server, a stub upstream and the instances (``InProcessService``s) sharing them.
    final class Cluster: Sendable {
        let backends: TestBackends
        let clock: ManualSyncClock
        let instances: AnnotatedMutex<[InProcessService]>

        init(
            chats: Int, instances count: Int, clockStart: Date = Date(), environment: [String: String] = [:],
            redisConfig: [String] = [], tune: @escaping @Sendable (inout CoordinationSettings) -> Void = { _ in }
        ) async throws {
            backends = try await TestBackends.start(
                chats: chats, participantsPerChat: 2, redisConfig: redisConfig, logger: MultiInstanceSyncTests.logger)
            clock = ManualSyncClock(now: clockStart)
            instances = AnnotatedMutex([])
            for index in 0..<count {
                let instance = try await InProcessService(
                    backends: backends,
                    environment: [
                        "INSTANCE_ID": "instance-\(index)",
                        "PARTICIPANTS_MAX_API_TIMEOUT": "1s",
                        "PARTICIPANTS_BATCH_SIZE": "10",
                        "PARTICIPANTS_LEADER_LOCK_TTL": "3s",
                    ].merging(environment) { $1 },
                    clock: clock,
                    tuneCoordination: { settings in
                        settings.maintenanceInterval = .milliseconds(100)
                        settings.pollInterval = .milliseconds(50)
                        tune(&settings)
                    },
                    logger: MultiInstanceSyncTests.logger, readiness: .redis)
                instances.withLock { $0.append(instance) }
            }
        }

        var all: [InProcessService] { instances.withLock { $0 } }
        var stub: StubUpstream { backends.stub }
        var redis: RedisServer { backends.redis }

        /// The instances that say they lead.
        func leaders(among instances: [InProcessService]? = nil) async -> [InProcessService] {
            var leading: [InProcessService] = []
            for instance in instances ?? all where await instance.isLeader { leading.append(instance) }
            return leading
        }

        /// Waits until exactly one of `instances` leads; nil if none did alone within `timeout`.
        func soleLeader(among instances: [InProcessService]? = nil, timeout: Duration = .seconds(10)) async
            -> InProcessService?
        {
            var leader: InProcessService?
            let found = await eventually(timeout: timeout) {
                let leading = await self.leaders(among: instances)
                leader = leading.count == 1 ? leading[0] : nil
                return leader != nil
            }
            return found ? leader : nil
        }

        func keyCount(_ pattern: String) async -> Int {
            await backends.redisKeyCount(pattern: pattern)
        }

        /// How many batches of the shared stream `instance` has read and not acknowledged.
        func pending(of instance: InProcessService) async throws -> Int {
            let summary = try await redis.cli(
                "XPENDING", CoordinationKeys.batches, CoordinationKeys.group, "-", "+", "1000", instance.instanceID)
            // Four lines per entry: id, consumer, idle time, deliveries.
            return summary.split(separator: "\n").count / 4
        }

        func fullRunIDs() async -> [String] {
            let output = (try? await redis.cli("ZRANGE", CoordinationKeys.runs, "0", "-1")) ?? ""
            return output.split(separator: "\n").map(String.init).filter { $0.hasPrefix("full-") }
        }

        func close(except dead: [InProcessService] = []) async {
            for instance in all where !dead.contains(where: { $0 === instance }) { await instance.close() }
            await backends.close()
        }
    }

    static func counts(_ job: [String: Any]) -> [String: Any] {
        job["counts"] as? [String: Any] ?? [:]
    }

    @Test func oneLeaderAtATimeAndAnotherTakesOverWithinTheTTLWhenItDies() async throws {
        // The test asserts the leader keeps its lock through renewals, so a busy CI machine
        // (sanitizers, parallel suites) must not cost it the lock by accident. Under
        // AddressSanitizer the whole test process stalled for about 2 s: the tests' 500 ms command
        // timeout made every instance's health check drop its connection (a PING "answered
        // late"), and reconnecting took 3 s more, past a 6 s TTL. Hence a 2 s command timeout
        // (the health check's bound too) and a 10 s TTL, which must stay above 3 of them.
        let ttl = Duration.seconds(10)
        let cluster = try await MultiInstanceSyncTests.Cluster(
            chats: 10, instances: 3,
            environment: ["PARTICIPANTS_LEADER_LOCK_TTL": "10s", "REDIS_COMMAND_TIMEOUT": "2s"])
        let first = try #require(await cluster.soleLeader())
        let firstFence = try #require(await first.coordination()["fence"] as? Int)
        // Every instance sees the same leader and fence (a follower learns of the leader on its
        // next look at the lock), and keeps seeing one leader.
        for instance in cluster.all {
            var leader: [String: Any]?
            let agrees = await eventually(timeout: .seconds(10)) {
                leader = await instance.coordination()["leader"] as? [String: Any]
                return leader?["instance_id"] as? String == first.instanceID
            }
            #expect(agrees, "\(instance.instanceID) sees \(String(describing: leader))")
            #expect(leader?["fence"] as? Int == firstFence)
            #expect(await instance.coordination()["instance_id"] as? String == instance.instanceID)
        }
        // Through three renewals (a whole TTL) the lock keeps its holder, which alone leads.
        let held = try #require(await cluster.redis.watchLeaderLock(renewals: 3))
        #expect(held.count == 1 && held.first?.hasPrefix("\(first.instanceID):") == true, "\(held)")
        #expect(await cluster.leaders().map(\.instanceID) == [first.instanceID])
        #expect(await first.coordination()["fence"] as? Int == firstFence)

        let died = ContinuousClock.now
        await first.kill()
        let survivors = cluster.all.filter { $0 !== first }
        let second = try #require(await cluster.soleLeader(among: survivors, timeout: ttl * 5))
        // Within the TTL plus generous slack for a loaded machine.
        #expect(ContinuousClock.now - died < ttl * 4)
        let secondFence = try #require(await second.coordination()["fence"] as? Int)
        #expect(secondFence > firstFence)
        for instance in survivors {
            #expect(
                (await instance.coordination()["leader"] as? [String: Any])?["instance_id"] as? String
                    == second.instanceID)
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
        let jobID = try #require(
            await follower.admin("POST", "/internal/participants/refresh").json["job_id"] as? String)
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
            // The fault: upstream hangs for 300 ms, then answers again for 300 ms.
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

        let job = try await next.waitForJob(jobID, timeout: .seconds(90))
        #expect(job["state"] as? String == "completed")
        let counts = MultiInstanceSyncTests.counts(job)
        #expect(counts["chats_planned"] as? Int == chats)
        #expect(counts["chats_refreshed"] as? Int == chats)
        #expect(counts["batches_planned"] as? Int == chats / 10)
        #expect(job["adoptions"] as? Int == 1)
        #expect(job["leader"] as? String == next.instanceID)
        #expect(await cluster.keyCount(MultiInstanceSyncTests.fullRunKey) == chats)

        // What the dead instance held was claimed by the others; nothing is left pending.
        var claimed = 0
        for instance in survivors {
            claimed += (await instance.coordination()["consumer"] as? [String: Any])?["batches_claimed"] as? Int ?? 0
        }
        #expect(pendingOfTheDead > 0)
        #expect(claimed >= pendingOfTheDead)
        let stream = await next.coordination()["stream"] as? [String: Any]
        #expect(stream?["pending"] as? Int == 0)
        #expect((stream?["length"] as? Int ?? .max) <= 45)
        // Every surviving instance took a share of the batches.
        for instance in survivors {
            let settled = (await instance.coordination()["consumer"] as? [String: Any])?["batches_settled"] as? Int ?? 0
            #expect(settled > 0, "\(instance.instanceID) processed no batch")
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
        let ended = try await leader.waitForJob(runID, timeout: .seconds(20))
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
        for instance in cluster.all {
            let kept = await eventually(timeout: .seconds(5)) {
                (await instance.coordination()["pending_ticks"] as? [String: Any])?["full"] != nil
            }
            #expect(kept, "\(instance.instanceID) did not keep the 03:00 tick")
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
