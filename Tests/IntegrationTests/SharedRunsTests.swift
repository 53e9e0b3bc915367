import Foundation
import Logging
import TestSupport
import Testing

@testable import Actors
@testable import ChatRuntime

/// The coordination scripts against a real redis-server: tick claims, admission, fenced
/// appends, adoption, settlement once per batch, claims of a dead reader's batches, trimming.
@Suite("Shared runs", .serialized, .timeLimit(.minutes(2)))
struct SharedRunsTests {
    static let logger = Logger(label: "test.shared-runs")
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    final class Rig: Sendable {
        let redis: RedisServer
        let loop: EventLoop
        let supervisor: RedisSupervisor
        let supervisorTask: Task<Void, any Error>
        let settings: CoordinationSettings
        let runs: SharedRuns

        init(redisConfig: [String] = [], configure: (inout CoordinationSettings) -> Void = { _ in }) async throws {
            redis = try await RedisServer.start(extraConfig: redisConfig)
            loop = EventLoop(name: "shared-runs")
            supervisor = RedisSupervisor(
                endpoint: redis.endpoint(), loop: loop,
                policy: .init(
                    maxRetries: 2, backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(100)),
                    probeInterval: .milliseconds(200)),
                connectionOptions: RedisConnectionOptions(
                    connectTimeout: .milliseconds(500), commandTimeout: .seconds(2)),
                logger: SharedRunsTests.logger)
            var settings = CoordinationSettings(instanceID: "me")
            configure(&settings)
            self.settings = settings
            runs = SharedRuns(supervisor: supervisor, settings: settings, errorLimit: 5)
            let supervisor = supervisor
            supervisorTask = Task { try await supervisor.run() }
            try #require(
                await eventually(timeout: .seconds(10)) { await supervisor.state == .ready }, "Redis was not ready")
        }

        func stream(as consumer: String, claimMinIdle: Duration = .seconds(60)) -> BatchStream {
            var settings = settings
            settings.instanceID = consumer
            settings.claimMinIdle = claimMinIdle
            return BatchStream(supervisor: supervisor, settings: settings)
        }

        /// Puts `value` in the lock, as if its holder had acquired it with `fence`.
        func lease(_ value: String, fence: Int64) async throws -> LeaderLease {
            _ = try await redis.cli("SET", CoordinationKeys.leader, value, "PX", "60000")
            _ = try await redis.cli("SET", CoordinationKeys.fence, String(fence))
            return LeaderLease(fence: fence, value: value, validUntil: .now + .seconds(60))
        }

        /// Waits until every batch read and not acknowledged has been idle for `idle` as Redis
        /// counts it (XPENDING), which is what claiming goes by.
        func pendingIdle(atLeast idle: Duration) async -> Bool {
            let milliseconds =
                Int(idle.components.seconds) * 1000 + Int(idle.components.attoseconds / 1_000_000_000_000_000)
            return await eventually(timeout: .seconds(10)) {
                guard
                    let summary = try? await redis.cli(
                        "XPENDING", CoordinationKeys.batches, CoordinationKeys.group, "-", "+", "1000")
                else { return false }
                // Four lines per entry: id, consumer, idle time (ms), deliveries.
                let lines = summary.split(separator: "\n")
                guard !lines.isEmpty, lines.count % 4 == 0 else { return false }
                return stride(from: 2, to: lines.count, by: 4).allSatisfy { (Int(lines[$0]) ?? 0) >= milliseconds }
            }
        }

        func field(_ id: RunID, _ name: String) async throws -> String {
            try await redis.cli("HGET", CoordinationKeys.run(id), name)
        }

        func close() async {
            supervisorTask.cancel()
            #expect(await eventually(timeout: .seconds(5)) { await self.supervisor.state == .stopped })
            loop.stop()
            redis.cleanup()
        }
    }

    static func id(_ text: String) -> RunID { RunID(rawValue: text) }

    static func chats(_ names: String...) -> [ChatID] { names.map { ChatID(validating: $0)! } }

    @Test func aTickIsClaimedOnceAndOnlyForwardWithTheRunItStarts() async throws {
        let rig = try await Rig()
        let lease = try await rig.lease("me:1", fence: 1)
        let three = SharedRuns.Tick(slot: .full, due: Self.t0, minimumGap: .milliseconds(1))
        let first = try await rig.runs.create(
            Self.id("full-1"), kind: .full, trigger: "schedule", at: Self.t0, lease: lease, tick: three)
        #expect(first == .started(Self.id("full-1")))
        #expect(
            try await rig.redis.cli("GET", CoordinationKeys.tick(.full)) == String(SharedRuns.milliseconds(Self.t0)))
        #expect(try await rig.field(Self.id("full-1"), "state") == "queued")
        #expect(try await rig.redis.cli("GET", CoordinationKeys.active(.full)) == "full-1")

        // The same tick again (a new leader that saw 03:00 too), or an older one: not run again.
        #expect(
            try await rig.runs.create(
                Self.id("full-2"), kind: .full, trigger: "schedule", at: Self.t0, lease: lease, tick: three)
                == .alreadyClaimed)
        var earlier = three
        earlier.due = Self.t0.addingTimeInterval(-86_400)
        #expect(
            try await rig.runs.create(
                Self.id("full-3"), kind: .full, trigger: "schedule", at: Self.t0, lease: lease, tick: earlier)
                == .alreadyClaimed)
        #expect(try await rig.redis.cli("EXISTS", CoordinationKeys.run(Self.id("full-2"))) == "0")

        // Only the lock holder claims ticks.
        let stranger = LeaderLease(fence: 9, value: "other:9", validUntil: .now + .seconds(60))
        var tomorrow = three
        tomorrow.due = Self.t0.addingTimeInterval(86_400)
        #expect(
            try await rig.runs.create(
                Self.id("full-4"), kind: .full, trigger: "schedule", at: Self.t0, lease: stranger, tick: tomorrow)
                == .notLeader)

        // The next day's tick while the run still goes: claimed, and it joins the run.
        #expect(
            try await rig.runs.create(
                Self.id("full-5"), kind: .full, trigger: "schedule", at: Self.t0, lease: lease, tick: tomorrow)
                == .joined(Self.id("full-1")))
        #expect(
            try await rig.redis.cli("GET", CoordinationKeys.tick(.full))
                == String(SharedRuns.milliseconds(tomorrow.due)))
        #expect(try await rig.field(Self.id("full-1"), "joined_requests") == "1")
        await rig.close()
    }

    @Test func oneFullAndOneIntervalStyleRunAtATimeClusterWide() async throws {
        let rig = try await Rig()
        // Manual requests need no lease: any instance records them for the leader.
        #expect(
            try await rig.runs.create(
                Self.id("manual-1"), kind: .manualFull, trigger: "admin", at: Self.t0, lease: nil, tick: nil)
                == .started(Self.id("manual-1")))
        #expect(
            try await rig.runs.create(
                Self.id("manual-2"), kind: .manualFull, trigger: "admin", at: Self.t0, lease: nil, tick: nil)
                == .joined(Self.id("manual-1")))
        #expect(
            try await rig.runs.create(
                Self.id("interval-1"), kind: .interval, trigger: "schedule", at: Self.t0, lease: nil, tick: nil)
                == .skipped(coveredBy: Self.id("manual-1")))
        // A catch-up runs beside a full run, and a second catch-up joins it.
        #expect(
            try await rig.runs.create(
                Self.id("catchup-1"), kind: .catchUp, trigger: "redis_ready", at: Self.t0, lease: nil, tick: nil)
                == .started(Self.id("catchup-1")))
        #expect(
            try await rig.runs.create(
                Self.id("catchup-2"), kind: .catchUp, trigger: "redis_ready", at: Self.t0, lease: nil, tick: nil)
                == .joined(Self.id("catchup-1")))
        #expect(
            try await rig.runs.create(
                Self.id("manual-1"), kind: .catchUp, trigger: "x", at: Self.t0, lease: nil, tick: nil)
                == .joined(Self.id("catchup-1")))
        let active = try await rig.runs.activeRuns()
        #expect(active.map(\.id) == [Self.id("manual-1"), Self.id("catchup-1")])
        // An active key whose record expired does not block new runs.
        _ = try await rig.redis.cli("DEL", CoordinationKeys.run(Self.id("manual-1")))
        #expect(
            try await rig.runs.create(
                Self.id("manual-3"), kind: .manualFull, trigger: "admin", at: Self.t0, lease: nil, tick: nil)
                == .started(Self.id("manual-3")))
        let recent = try await rig.runs.recent(limit: 10)
        #expect(Set(recent.map(\.id.rawValue)) == ["catchup-1", "manual-3"])
        await rig.close()
    }

    @Test func appendsAreFencedByTheLockAndByTheRunsFence() async throws {
        let rig = try await Rig()
        let run = Self.id("full-1")
        _ = try await rig.runs.create(run, kind: .full, trigger: "schedule", at: Self.t0, lease: nil, tick: nil)
        let a = try await rig.lease("a:1", fence: 1)
        guard case .adopted(let fresh, let previous) = try await rig.runs.adopt(run, slot: .full, lease: a, at: Self.t0)
        else {
            Issue.record("not adopted")
            return
        }
        #expect(previous == 0)
        #expect(fresh.cursor == nil)
        #expect(fresh.run.state == .running)
        #expect(fresh.run.fence == 1)

        let page = SharedRuns.Progress(pagesRead: 1, chatsConsidered: 3, idsRejected: 0, cursor: "100")
        let appended = try await rig.runs.append(
            run, kind: .full, lease: a, batches: [Self.chats("c-1", "c-2"), Self.chats("c-3")], progress: page,
            final: false,
            at: Self.t0)
        #expect(appended == .appended(state: .running, backlog: 2, streamLength: 2))
        #expect(try await rig.redis.cli("XLEN", CoordinationKeys.batches) == "2")

        // A new leader (fence 2) holds the lock: the old one's appends are refused.
        let b = try await rig.lease("b:2", fence: 2)
        #expect(
            try await rig.runs.append(
                run, kind: .full, lease: a, batches: [Self.chats("c-4")], progress: .init(), final: false, at: Self.t0)
                == .notLeader)
        guard
            case .adopted(let resumed, let previousFence) = try await rig.runs.adopt(
                run, slot: .full, lease: b, at: Self.t0)
        else {
            Issue.record("not adopted by the new leader")
            return
        }
        #expect(previousFence == 1)
        #expect(resumed.cursor == "100")
        #expect(resumed.run.pagesRead == 1)
        #expect(resumed.run.counts.batchesPlanned == 2)
        #expect(resumed.run.adoptions == 1)
        #expect(resumed.run.leader == "me")

        // Even holding the lock's value, a producer whose fence is not the run's is refused.
        _ = try await rig.lease("a:1", fence: 2)
        #expect(
            try await rig.runs.append(
                run, kind: .full, lease: a, batches: [Self.chats("c-4")], progress: .init(), final: false, at: Self.t0)
                == .notOwner)

        _ = try await rig.lease("b:2", fence: 2)
        let last = try await rig.runs.append(
            run, kind: .full, lease: b, batches: [Self.chats("c-4")], progress: .init(pagesRead: 1, chatsConsidered: 1),
            final: true,
            at: Self.t0)
        #expect(last == .appended(state: .running, backlog: 3, streamLength: 3))
        let entries = StreamReplies.entries(
            fromRead: .array([
                .array([
                    .bulkString([]),
                    try await rig.supervisor.send(
                        RedisCommand("XRANGE", [CoordinationKeys.batches, "-", "+"])),
                ])
            ]))
        let batches = entries.compactMap { BatchStream.batch(from: $0, claimed: false) }
        #expect(batches.map(\.number) == [1, 2, 3])
        #expect(batches.map { $0.delivery?.fence } == [1, 1, 2])
        #expect(try await rig.field(run, "producer_done") == "1")
        #expect(try await rig.field(run, "chats_planned") == "4")
        #expect(try await rig.field(run, "pages_read") == "2")
        // A finished producer's run is not adopted again; it waits for its batches.
        #expect(try await rig.runs.adopt(run, slot: .full, lease: b, at: Self.t0) == .settling)
        await rig.close()
    }

    @Test func eachBatchIsBookedOnceAndTheRunEndsWhenEveryBatchIsBack() async throws {
        let rig = try await Rig()
        let run = Self.id("manual-1")
        _ = try await rig.runs.create(run, kind: .manualFull, trigger: "admin", at: Self.t0, lease: nil, tick: nil)
        let lease = try await rig.lease("me:1", fence: 1)
        _ = try await rig.runs.adopt(run, slot: .full, lease: lease, at: Self.t0)
        _ = try await rig.runs.append(
            run, kind: .manualFull, lease: lease,
            batches: [Self.chats("c-1", "c-2"), Self.chats("c-3"), Self.chats("c-4")],
            progress: .init(pagesRead: 1, chatsConsidered: 4, cursor: ""), final: true, at: Self.t0)

        let stream = rig.stream(as: "me")
        try await stream.ensureGroup()
        try await stream.ensureGroup() // BUSYGROUP is fine
        let read = try await stream.read(count: 10)
        #expect(read.fence == 1)
        let batches = read.entries.compactMap { BatchStream.batch(from: $0, claimed: false) }
        #expect(batches.count == 3)
        func outcome(_ batch: SyncBatch, _ result: BatchOutcome.Result, refreshed: Int = 0, failed: Int = 0)
            -> BatchOutcome
        {
            var outcome = BatchOutcome(
                runID: batch.runID, batchNumber: batch.number, result: result, chatsRefreshed: refreshed,
                chatsFailed: failed,
                errors: failed > 0 ? ["batch \(batch.number): upstream 503"] : [])
            outcome.delivery = batch.delivery
            return outcome
        }
        let first = outcome(batches[0], .written, refreshed: 2)
        #expect(try await rig.runs.settle(first, delivery: first.delivery!, at: Self.t0) == .counted(.running))
        // Processed twice (claimed from a slow reader): booked once.
        #expect(try await rig.runs.settle(first, delivery: first.delivery!, at: Self.t0) == .duplicate)
        let second = outcome(batches[1], .failed, failed: 1)
        #expect(try await rig.runs.settle(second, delivery: second.delivery!, at: Self.t0) == .counted(.running))
        let third = outcome(batches[2], .deferred, refreshed: 1)
        #expect(try await rig.runs.settle(third, delivery: third.delivery!, at: Self.t0) == .counted(.completed))

        let ended = try #require(try await rig.runs.run(run))
        #expect(ended.state == .completed)
        #expect(ended.counts.batchesDone == 2)
        #expect(ended.counts.batchesDeferred == 1)
        #expect(ended.counts.batchesFailed == 1)
        #expect(ended.counts.chatsRefreshed == 3)
        #expect(ended.counts.chatsFailed == 1)
        #expect(ended.errors.map(\.message) == ["batch 2: upstream 503"])
        #expect(ended.finishedAt != nil)
        #expect(try await rig.redis.cli("EXISTS", CoordinationKeys.active(.full)) == "0")
        #expect(try await stream.status().pending == 0)
        await rig.close()
    }

    @Test func batchesADeadReaderLeftPendingAreClaimedByAnother() async throws {
        let rig = try await Rig()
        let run = Self.id("manual-1")
        _ = try await rig.runs.create(run, kind: .manualFull, trigger: "admin", at: Self.t0, lease: nil, tick: nil)
        let lease = try await rig.lease("me:1", fence: 1)
        _ = try await rig.runs.adopt(run, slot: .full, lease: lease, at: Self.t0)
        _ = try await rig.runs.append(
            run, kind: .manualFull, lease: lease, batches: [Self.chats("c-1"), Self.chats("c-2")], progress: .init(),
            final: true,
            at: Self.t0)
        let dead = rig.stream(as: "dead")
        try await dead.ensureGroup()
        #expect(try await dead.read(count: 10).entries.count == 2)
        // Not idle long enough yet: nothing to claim. (A minimum of 30 s: with 200 ms, a loaded
        // machine can take that long between the read above and this claim.)
        let patient = rig.stream(as: "alive", claimMinIdle: .seconds(30))
        #expect(try await patient.claim(count: 10, cursor: "0-0").entries.isEmpty)
        let alive = rig.stream(as: "alive", claimMinIdle: .milliseconds(200))
        try #require(await rig.pendingIdle(atLeast: .milliseconds(200)))
        let claim = try await alive.claim(count: 10, cursor: "0-0")
        #expect(claim.entries.count == 2)
        #expect(claim.cursor == "0-0")
        let status = try await alive.status()
        #expect(status.pendingByConsumer == ["alive": 2])
        #expect(status.lag == 0)
        await rig.close()
    }

    @Test func theStreamIsTrimmedOfProcessedBatchesButNeverOfUnprocessedOnes() async throws {
        // Small macro nodes, so that approximate trimming (~) works at a small scale.
        let rig = try await Rig(redisConfig: ["stream-node-max-entries 5"]) { $0.streamMaxLength = 20 }
        let run = Self.id("manual-1")
        _ = try await rig.runs.create(run, kind: .manualFull, trigger: "admin", at: Self.t0, lease: nil, tick: nil)
        let lease = try await rig.lease("me:1", fence: 1)
        _ = try await rig.runs.adopt(run, slot: .full, lease: lease, at: Self.t0)
        var appended = 0
        func append(_ count: Int) async throws -> Int {
            let batches = (0..<count).map { Self.chats("c-\(appended + $0)") }
            appended += count
            guard
                case .appended(_, _, let length) = try await rig.runs.append(
                    run, kind: .manualFull, lease: lease, batches: batches, progress: .init(), final: false, at: Self.t0
                )
            else { return -1 }
            return length
        }
        let stream = rig.stream(as: "me")
        func process(_ count: Int, acknowledge: Bool) async throws {
            let read = try await stream.read(count: count)
            #expect(read.entries.count == count)
            guard acknowledge else { return }
            for batch in read.entries.compactMap({ BatchStream.batch(from: $0, claimed: false) }) {
                var outcome = BatchOutcome(runID: run, batchNumber: batch.number, result: .written, chatsRefreshed: 1)
                outcome.delivery = batch.delivery
                _ = try await rig.runs.settle(outcome, delivery: batch.delivery!, at: Self.t0)
            }
        }

        // The append created the group: nothing delivered yet, nothing trimmed.
        #expect(try await append(10) == 10)
        try await process(10, acknowledge: true)
        // Processed batches go with the next append (whole nodes of 5 at a time).
        let afterProcessing = try await append(10)
        #expect(afterProcessing >= 10 && afterProcessing < 15, "XLEN \(afterProcessing)")

        // Delivered but not acknowledged (a dead instance's), and not yet delivered: kept.
        try await process(5, acknowledge: false)
        let withPending = try await append(5)
        #expect(withPending >= 15, "XLEN \(withPending)")
        try #require(await rig.pendingIdle(atLeast: .milliseconds(200)))
        let claim = try await rig.stream(as: "other", claimMinIdle: .milliseconds(200)).claim(count: 10, cursor: "0-0")
        #expect(claim.entries.count == 5)
        #expect(claim.deleted.isEmpty)
        #expect(try await rig.runs.trimAcknowledged() == withPending)

        // MAXLEN ~ 20 is the hard cap, which producers never reach (they wait at half of it):
        // appended past it, even unprocessed batches go.
        let capped = try await append(40)
        #expect(capped >= 20 && capped < 25, "XLEN \(capped)")
        #expect(try await rig.field(run, "batches_planned") == "65")
        await rig.close()
    }

    @Test func aRunWhoseBatchesNeverCameBackIsFailedAfterAWhile() async throws {
        let rig = try await Rig { $0.stuckRunAfter = .seconds(60) }
        let run = Self.id("manual-1")
        _ = try await rig.runs.create(run, kind: .manualFull, trigger: "admin", at: Self.t0, lease: nil, tick: nil)
        let lease = try await rig.lease("me:1", fence: 1)
        _ = try await rig.runs.adopt(run, slot: .full, lease: lease, at: Self.t0)
        _ = try await rig.runs.append(
            run, kind: .manualFull, lease: lease, batches: [Self.chats("c-1")], progress: .init(), final: true,
            at: Self.t0)
        #expect(
            try await rig.runs.adopt(run, slot: .full, lease: lease, at: Self.t0.addingTimeInterval(30)) == .settling)
        #expect(try await rig.runs.adopt(run, slot: .full, lease: lease, at: Self.t0.addingTimeInterval(61)) == .reaped)
        let failed = try #require(try await rig.runs.run(run))
        #expect(failed.state == .failed)
        #expect(failed.failure == "1 batches were never accounted for")
        #expect(try await rig.redis.cli("EXISTS", CoordinationKeys.active(.full)) == "0")
        await rig.close()
    }

    @Test func producerEndsAreFencedAndAFailedListingFailsTheRun() async throws {
        let rig = try await Rig()
        let run = Self.id("full-1")
        _ = try await rig.runs.create(run, kind: .full, trigger: "schedule", at: Self.t0, lease: nil, tick: nil)
        let lease = try await rig.lease("me:1", fence: 1)
        _ = try await rig.runs.adopt(run, slot: .full, lease: lease, at: Self.t0)
        let stale = LeaderLease(fence: 0, value: "old:0", validUntil: .now + .seconds(60))
        #expect(
            try await rig.runs.finishProducer(run, kind: .full, lease: stale, end: .failed, failure: "x", at: Self.t0)
                == nil)
        #expect(
            try await rig.runs.finishProducer(
                run, kind: .full, lease: lease, end: .failed, failure: "listing page 1 failed", at: Self.t0) == .failed)
        let ended = try #require(try await rig.runs.run(run))
        #expect(ended.failure == "listing page 1 failed")
        try await rig.runs.recordError(run, "page 1: boom", at: Self.t0)
        #expect(try await rig.runs.run(run)?.errors.map(\.message) == ["page 1: boom"])
        await rig.close()
    }
}
