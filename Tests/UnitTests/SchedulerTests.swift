import Foundation
import Logging
import MetricsTestKit
import Runtime
import ServiceLifecycle
import TestSupport
import Testing

@testable import Actors

@Suite("Scheduler", .timeLimit(.minutes(1)))
struct SchedulerTests {
    static func utc(_ text: String) -> Date {
        ISO8601Timestamp.date(from: text)!
    }

    /// A scheduler on a manual clock with in-memory upstream and store, run in a service group.
    struct Rig {
        let clock: ManualSyncClock
        let upstream: FakeUpstream
        let store: FakeStore
        let metrics = TestMetrics()
        let scheduler: Scheduler
        let redis: AsyncStream<RedisStateChange>.Continuation
        let group: ServiceGroup

        init(
            now: Date,
            chats: [ChatID] = [],
            batchGate: AsyncGate = AsyncGate(open: true),
            listGate: AsyncGate = AsyncGate(open: true),
            storeGate: AsyncGate = AsyncGate(open: true),
            configure: (inout Scheduler.Settings) -> Void = { _ in }
        ) {
            clock = ManualSyncClock(now: now)
            upstream = FakeUpstream(chats: chats, batchGate: batchGate, listGate: listGate)
            store = FakeStore(gate: storeGate)
            var settings = Scheduler.Settings()
            settings.batchSize = 10
            settings.maxBatchesInFlight = 2
            settings.bufferedBatches = 3
            settings.intervalJitter = 0
            settings.pageBackoff = Backoff(initial: .zero, maximum: .zero, jitter: 0)
            configure(&settings)
            let (changes, continuation) = AsyncStream.makeStream(of: RedisStateChange.self)
            redis = continuation
            scheduler = Scheduler(
                settings: settings, upstream: upstream, store: store, clock: clock, redisStateChanges: changes,
                random: SeededRandom(seed: 42), metricsFactory: metrics, logger: SyncDoubles.logger)
            group = ServiceGroup(configuration: .init(services: [scheduler], logger: SyncDoubles.logger))
        }

        func start() -> Task<Void, any Error> {
            let group = group
            return Task { try await group.run() }
        }

        /// Triggers graceful shutdown and waits for the scheduler to return.
        func shutdown(_ running: Task<Void, any Error>) async throws {
            await group.triggerGracefulShutdown()
            try await running.value
        }

        /// The run once it has ended (waits at most 10 s).
        func ended(_ id: RunID) async -> SyncRun? {
            let scheduler = scheduler
            _ = await eventually(timeout: .seconds(10)) { await scheduler.run(id)?.state != .running }
            return await scheduler.run(id)
        }

        /// The first ended run of `kind` (waits at most 10 s).
        func ended(kind: SyncRun.Kind) async -> SyncRun? {
            let scheduler = scheduler
            _ = await eventually(timeout: .seconds(10)) { await scheduler.status().recent.contains { $0.kind == kind } }
            return await scheduler.status().recent.last { $0.kind == kind }
        }
    }

    /// No batch or chat lost from the books.
    static func expectBalanced(_ run: SyncRun, sourceLocation: SourceLocation = #_sourceLocation) {
        let counts = run.counts
        #expect(
            counts.batchesPlanned == counts.batchesDone + counts.batchesFailed + counts.batchesSkipped,
            sourceLocation: sourceLocation)
        #expect(
            counts.chatsPlanned == counts.chatsRefreshed + counts.chatsNotFound + counts.chatsFailed + counts.chatsSkipped,
            sourceLocation: sourceLocation)
    }

    // MARK: The daily full run

    @Test func fullRunStartsAtThreeNotBeforeAndRefreshesEveryChatOnce() async throws {
        let chats = SyncDoubles.chats(250)
        let rig = Rig(now: Self.utc("2026-11-25T02:50:00.000Z"), chats: chats) { settings in
            settings.batchSize = 7
            settings.maxBatchesInFlight = 3
            settings.bufferedBatches = 2
            settings.intervalRunsEnabled = false
        }
        let running = rig.start()
        #expect(await rig.clock.waitForSleepers(atLeast: 1))
        #expect(await rig.scheduler.status().schedule.nextFullRunAt == Self.utc("2026-11-25T03:00:00.000Z"))

        rig.clock.set(Self.utc("2026-11-25T02:59:59.000Z"))
        #expect(rig.clock.sleeperDeadlines == [Self.utc("2026-11-25T03:00:00.000Z")])
        #expect(rig.upstream.listCalls.isEmpty)
        #expect(await rig.scheduler.status().running.isEmpty)

        rig.clock.set(Self.utc("2026-11-25T03:00:00.000Z"))
        let run = try #require(await rig.ended(kind: .full))
        #expect(run.state == .completed)
        #expect(run.trigger == "schedule")
        #expect(run.id.rawValue.hasPrefix("full-20261125T030000Z-"))
        #expect(run.pagesRead == 3)
        #expect(rig.upstream.listCalls == [nil, "100", "200"])
        #expect(rig.store.writes == Dictionary(uniqueKeysWithValues: chats.map { ($0, 1) }))
        #expect(rig.upstream.batchCalls.allSatisfy { $0.count <= 7 })
        #expect(rig.upstream.batchCalls.count == 36)
        #expect(rig.upstream.peakInFlight <= 3)
        #expect(run.counts.chatsConsidered == 250)
        #expect(run.counts.chatsPlanned == 250)
        #expect(run.counts.chatsRefreshed == 250)
        #expect(run.counts.batchesPlanned == 36)
        #expect(run.counts.batchesDone == 36)
        Self.expectBalanced(run)

        // The next one is tomorrow's.
        let scheduler = rig.scheduler
        #expect(await eventually(timeout: .seconds(5)) {
            await scheduler.status().schedule.nextFullRunAt == Self.utc("2026-11-26T03:00:00.000Z")
        })
        #expect(try rig.metrics.expectCounter("sync_runs_total", [("kind", "full"), ("result", "completed")]).totalValue == 1)
        #expect(try rig.metrics.expectCounter("sync_batches_total", [("result", "written")]).totalValue == 36)
        #expect(try rig.metrics.expectCounter("sync_chats_refreshed_total").totalValue == 250)
        #expect(try rig.metrics.expectGauge("sync_run_in_progress", [("kind", "full")]).lastValue == 0)
        #expect(try rig.metrics.expectTimer("sync_run_duration_seconds", [("kind", "full")]).values.count == 1)
        try await rig.shutdown(running)
    }

    @Test func manualFullRequestJoinsTheFullRunGoing() async throws {
        let chats = SyncDoubles.chats(30)
        let listGate = AsyncGate()
        let rig = Rig(now: Self.utc("2026-11-25T02:50:00.000Z"), chats: chats, listGate: listGate) { settings in
            settings.intervalRunsEnabled = false
        }
        let running = rig.start()
        #expect(await rig.clock.waitForSleepers(atLeast: 1))
        rig.clock.set(Self.utc("2026-11-25T03:00:00.000Z"))
        #expect(await eventually(timeout: .seconds(5)) { rig.upstream.listCalls.count == 1 })
        let scheduled = try #require(await rig.scheduler.status().running.first)
        #expect(scheduled.kind == .full)

        #expect(await rig.scheduler.requestFullRun(trigger: "admin") == scheduled.id)
        #expect(await rig.scheduler.requestFullRun(trigger: "admin") == scheduled.id)
        #expect(await rig.scheduler.status().running.count == 1)

        listGate.open()
        let joined = try #require(await rig.ended(scheduled.id))
        #expect(joined.state == .completed)
        #expect(joined.joinedRequests == 2)
        #expect(rig.store.writes.values.allSatisfy { $0 == 1 })

        // With nothing going, a request starts its own run.
        let manual = await rig.scheduler.requestFullRun(trigger: "admin")
        #expect(manual != scheduled.id)
        let ended = try #require(await rig.ended(manual))
        #expect(ended.kind == .manualFull)
        #expect(ended.trigger == "admin")
        #expect(ended.state == .completed)
        #expect(rig.store.writes.count == 30 && rig.store.writes.values.allSatisfy { $0 == 2 })
        try await rig.shutdown(running)
    }

    // MARK: Interval runs

    @Test func intervalRunRefreshesTrackedChatsStaleByTheNextRun() async throws {
        let t0 = Self.utc("2026-11-25T10:00:00.000Z")
        let names = ["a-stale", "b-soon", "c-fresh", "d-unknown", "e-soon", "f-fresh", "g-untracked"]
        let chat = Dictionary(uniqueKeysWithValues: names.map { ($0, SyncDoubles.chat($0)) })
        let rig = Rig(now: t0, chats: Array(chat.values)) { settings in
            settings.fullRunsEnabled = false
            settings.updateInterval = .seconds(15 * 60)
            settings.staleThreshold = .seconds(60 * 60)
        }
        let minutesAgo = { (minutes: Double) in t0.addingTimeInterval(-minutes * 60) }
        rig.store.setEntry(chat["a-stale"]!, fetchedAt: minutesAgo(120))
        rig.store.setEntry(chat["b-soon"]!, fetchedAt: minutesAgo(50))
        rig.store.setEntry(chat["c-fresh"]!, fetchedAt: minutesAgo(10))
        rig.store.setEntry(chat["e-soon"]!, fetchedAt: minutesAgo(40))
        rig.store.setEntry(chat["f-fresh"]!, fetchedAt: minutesAgo(20))
        rig.store.setEntry(chat["g-untracked"]!, fetchedAt: minutesAgo(300))
        for name in names.dropLast() { rig.store.markRead(chat[name]!, at: minutesAgo(60)) }
        rig.store.markRead(chat["g-untracked"]!, at: minutesAgo(25 * 60))

        let running = rig.start()
        #expect(await rig.clock.waitForSleepers(atLeast: 1))
        #expect(rig.clock.sleeperDeadlines == [t0.addingTimeInterval(15 * 60)])
        rig.clock.advance(by: .seconds(14 * 60 + 59))
        #expect(rig.upstream.batchCalls.isEmpty)

        // 10:15: at the next run (10:30) a, b and e are at least an hour old; d has no entry.
        rig.clock.advance(by: .seconds(1))
        let first = try #require(await rig.ended(kind: .interval))
        #expect(first.state == .completed)
        #expect(first.trigger == "schedule")
        #expect(first.counts.chatsConsidered == 6)
        #expect(first.counts.chatsPlanned == 4)
        #expect(first.counts.chatsRefreshed == 4)
        #expect(rig.upstream.batchCalls == [["a-stale", "b-soon", "d-unknown", "e-soon"].map { chat[$0]! }])
        Self.expectBalanced(first)

        // 10:30: by 10:45 only f (fetched 9:40) has reached an hour.
        #expect(await rig.clock.waitForSleepers(atLeast: 1))
        rig.clock.advance(by: .seconds(15 * 60))
        let scheduler = rig.scheduler
        #expect(await eventually(timeout: .seconds(10)) {
            await scheduler.status().recent.filter { $0.kind == .interval }.count == 2
        })
        #expect(rig.upstream.batchCalls.last == [chat["f-fresh"]!])
        try await rig.shutdown(running)
    }

    @Test func intervalTickWhileAFullRunIsGoingIsSkipped() async throws {
        let listGate = AsyncGate()
        let rig = Rig(now: Self.utc("2026-11-25T02:50:00.000Z"), chats: SyncDoubles.chats(20), listGate: listGate) { settings in
            settings.updateInterval = .seconds(15 * 60)
        }
        for chat in SyncDoubles.chats(20) { rig.store.markRead(chat, at: rig.clock.now()) }
        let running = rig.start()
        #expect(await rig.clock.waitForSleepers(atLeast: 2))
        rig.clock.set(Self.utc("2026-11-25T03:00:00.000Z"))
        #expect(await eventually(timeout: .seconds(5)) { rig.upstream.listCalls.count == 1 })

        // 03:05: the interval tick finds the full run going and re-arms for 03:20.
        rig.clock.set(Self.utc("2026-11-25T03:05:00.000Z"))
        #expect(await eventually(timeout: .seconds(5)) {
            rig.clock.sleeperDeadlines.contains(Self.utc("2026-11-25T03:20:00.000Z"))
        })
        let status = await rig.scheduler.status()
        #expect(status.running.map(\.kind) == [.full])
        #expect(status.totals.runsStarted == 1)

        listGate.open()
        let full = try #require(await rig.ended(kind: .full))
        #expect(full.state == .completed)
        rig.clock.set(Self.utc("2026-11-25T03:20:00.000Z"))
        let interval = try #require(await rig.ended(kind: .interval))
        #expect(interval.counts.chatsConsidered == 20)
        #expect(interval.counts.chatsPlanned == 0)
        #expect(interval.state == .completed)
        try await rig.shutdown(running)
    }

    // MARK: Catch-up

    @Test func redisComingBackStartsACatchUpRun() async throws {
        let now = Self.utc("2026-11-25T12:00:00.000Z")
        let chats = SyncDoubles.chats(5)
        let rig = Rig(now: now, chats: chats) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        for chat in chats {
            rig.store.setEntry(chat, fetchedAt: now.addingTimeInterval(-7200))
            rig.store.markRead(chat, at: now.addingTimeInterval(-60))
        }
        let running = rig.start()
        let since = ContinuousClock.now
        // The first connection and the subscription's snapshot are not recoveries.
        rig.redis.yield(RedisStateChange(from: .connecting, to: .connecting, since: since))
        rig.redis.yield(RedisStateChange(from: .connecting, to: .ready, since: since))
        rig.redis.yield(RedisStateChange(from: .ready, to: .reconnecting(attempt: 1), since: since))
        rig.redis.yield(RedisStateChange(from: .reconnecting(attempt: 1), to: .unavailable, since: since))
        rig.redis.yield(RedisStateChange(from: .unavailable, to: .ready, since: since))
        let catchUp = try #require(await rig.ended(kind: .catchUp))
        #expect(catchUp.trigger == "redis_ready")
        #expect(catchUp.state == .completed)
        #expect(catchUp.counts.chatsRefreshed == 5)
        #expect(await rig.scheduler.status().totals.runsStarted == 1)

        rig.redis.yield(RedisStateChange(from: .ready, to: .reconnecting(attempt: 1), since: since))
        rig.redis.yield(RedisStateChange(from: .reconnecting(attempt: 1), to: .ready, since: since))
        let scheduler = rig.scheduler
        #expect(await eventually(timeout: .seconds(10)) { await scheduler.status().totals.runsCompleted == 2 })
        #expect(await rig.scheduler.status().totals.runsStarted == 2)
        #expect(Scheduler.isRecovery(from: .connecting) == false)
        try await rig.shutdown(running)
    }

    @Test func catchUpRequestJoinsTheIntervalStyleRunGoing() async throws {
        let chats = SyncDoubles.chats(5)
        let batchGate = AsyncGate()
        let rig = Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: chats, batchGate: batchGate) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        for chat in chats { rig.store.markRead(chat, at: rig.clock.now()) }
        let running = rig.start()
        let first = try #require(await rig.scheduler.requestCatchUpRun())
        #expect(await eventually(timeout: .seconds(5)) { rig.upstream.inFlight == 1 })
        #expect(await rig.scheduler.requestCatchUpRun() == first)
        batchGate.open()
        #expect(await rig.ended(first)?.joinedRequests == 1)
        try await rig.shutdown(running)
    }

    // MARK: Failures

    @Test func failedAndPartialBatchesAreCountedAndLeaveTheStoreUntouched() async throws {
        let chats = SyncDoubles.chats(30)
        let rig = Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: chats) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        rig.upstream.state.withLock { state in
            state.failBatchesWith = [chats[15]]
            state.omitted = [chats[3]]
            state.malformed = [chats[25]]
        }
        let running = rig.start()
        let run = try #require(await rig.ended(await rig.scheduler.requestFullRun(trigger: "test")))
        #expect(run.state == .completed)
        #expect(run.counts.batchesDone == 2)
        #expect(run.counts.batchesFailed == 1)
        #expect(run.counts.chatsRefreshed == 18)
        #expect(run.counts.chatsFailed == 12)
        #expect(run.errors.contains { $0.message.contains("503") })
        #expect(run.errors.contains { $0.message.contains("malformed") })
        #expect(run.errors.contains { $0.message.contains("missing") })
        Self.expectBalanced(run)
        let written = Set(rig.store.writes.keys)
        #expect(written.isDisjoint(with: chats[10..<20]))
        #expect(!written.contains(chats[3]) && !written.contains(chats[25]))
        #expect(written.count == 18)
        #expect(try rig.metrics.expectCounter("sync_batches_total", [("result", "failed")]).totalValue == 1)
        #expect(try rig.metrics.expectCounter("sync_chats_failed_total").totalValue == 12)
        try await rig.shutdown(running)
    }

    @Test func runWhoseEveryBatchFailsHasFailed() async throws {
        let chats = SyncDoubles.chats(20)
        let rig = Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: chats) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        rig.upstream.state.withLock { $0.failBatchesWith = Set(chats) }
        let running = rig.start()
        let run = try #require(await rig.ended(await rig.scheduler.requestFullRun(trigger: "test")))
        #expect(run.state == .failed)
        #expect(run.failure == "every batch failed upstream")
        #expect(run.counts.batchesFailed == 2)
        #expect(rig.store.storeCalls.isEmpty)
        #expect(try rig.metrics.expectCounter("sync_runs_total", [("kind", "manual_full"), ("result", "failed")]).totalValue == 1)
        try await rig.shutdown(running)
    }

    @Test func pageFailureIsRetriedWithBackoffOnTheSyncClock() async throws {
        let rig = Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(250)) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
            settings.pageRetries = 3
            settings.pageBackoff = Backoff(initial: .seconds(5), maximum: .seconds(5), jitter: 0)
        }
        rig.upstream.state.withLock { $0.pageFailures[1] = 2 }
        let running = rig.start()
        let id = await rig.scheduler.requestFullRun(trigger: "test")
        for retry in 1...2 {
            // Each retry waits 5 s on the clock, and not a moment less.
            #expect(await rig.clock.waitForSleepers(atLeast: 1))
            #expect(rig.upstream.listCalls.count == 1 + retry)
            #expect(rig.clock.sleeperDeadlines == [rig.clock.now().addingTimeInterval(5)])
            rig.clock.advance(by: .seconds(5))
        }
        let run = try #require(await rig.ended(id))
        #expect(run.state == .completed)
        #expect(run.pagesRead == 3)
        #expect(rig.upstream.listCalls == [nil, "100", "100", "100", "200"])
        #expect(run.errorsTotal == 2)
        #expect(run.counts.chatsRefreshed == 250)
        try await rig.shutdown(running)
    }

    @Test func pageFailingPastItsRetriesFailsTheRunAfterRefreshingWhatWasListed() async throws {
        let rig = Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(250)) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
            settings.pageRetries = 2
            settings.batchSize = 30
        }
        rig.upstream.state.withLock { $0.pageFailures[1] = .max }
        let running = rig.start()
        let run = try #require(await rig.ended(await rig.scheduler.requestFullRun(trigger: "test")))
        #expect(run.state == .failed)
        #expect(run.failure?.contains("page 2") == true)
        #expect(run.failure?.contains("3 attempts") == true)
        #expect(rig.upstream.listCalls == [nil, "100", "100", "100"])
        #expect(run.pagesRead == 1)
        // The first page's 100 chats, the last 10 of them a partial batch, were still refreshed.
        #expect(run.counts.chatsRefreshed == 100)
        #expect(run.counts.batchesDone == 4)
        #expect(run.errorsTotal == 3)
        Self.expectBalanced(run)
        try await rig.shutdown(running)
    }

    @Test func unauthorizedListingIsNotRetried() async throws {
        let rig = Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(10)) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        rig.upstream.state.withLock { state in
            state.pageFailures[0] = .max
            state.pageFailureCode = .unauthorized
        }
        let running = rig.start()
        let run = try #require(await rig.ended(await rig.scheduler.requestFullRun(trigger: "test")))
        #expect(run.state == .failed)
        #expect(rig.upstream.listCalls.count == 1)
        #expect(run.counts.batchesPlanned == 0)
        try await rig.shutdown(running)
    }

    // MARK: Backpressure and shutdown

    @Test func slowStoreHoldsTheFullRunBack() async throws {
        let chats = SyncDoubles.chats(2000)
        let storeGate = AsyncGate()
        let rig = Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: chats, storeGate: storeGate) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        let running = rig.start()
        let id = await rig.scheduler.requestFullRun(trigger: "test")
        let scheduler = rig.scheduler
        #expect(await eventually(timeout: .seconds(5)) {
            let queued = await scheduler.status().batcher.queued
            return rig.store.writing == 2 && queued == 3
        })
        try await Task.sleep(for: .milliseconds(50))
        // Two batches writing, three queued, the sixth waiting: the first page is not used up.
        let going = try #require(await scheduler.run(id))
        #expect(going.counts.batchesPlanned - going.counts.batchesSettled <= 3 + 2 + 1)
        #expect(rig.upstream.listCalls.count == 1)
        #expect(rig.upstream.batchCalls.count == 2)

        storeGate.open()
        let run = try #require(await rig.ended(id))
        #expect(run.state == .completed)
        #expect(run.pagesRead == 20)
        #expect(rig.store.writes.count == 2000 && rig.store.writes.values.allSatisfy { $0 == 1 })
        #expect(await scheduler.status().batcher.peakInFlight == 2)
        try await rig.shutdown(running)
    }

    @Test func shutdownLetsTheBatchesInHandFinish() async throws {
        let storeGate = AsyncGate()
        let rig = Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(2000), storeGate: storeGate) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
            settings.shutdownGracePeriod = .seconds(30)
        }
        let running = rig.start()
        let id = await rig.scheduler.requestFullRun(trigger: "test")
        let scheduler = rig.scheduler
        #expect(await eventually(timeout: .seconds(5)) {
            let queued = await scheduler.status().batcher.queued
            return rig.store.writing == 2 && queued == 3
        })
        await rig.group.triggerGracefulShutdown()
        #expect(await eventually(timeout: .seconds(5)) { await scheduler.status().state == "stopping" })
        storeGate.open()
        try await running.value

        let run = try #require(await scheduler.run(id))
        #expect(run.state == .cancelled)
        #expect(run.counts.batchesPlanned == 5)
        #expect(run.counts.batchesDone == 5)
        #expect(run.counts.batchesSkipped == 0)
        #expect(run.counts.chatsRefreshed == 50)
        #expect(rig.store.writes.count == 50)
        Self.expectBalanced(run)
        #expect(await scheduler.status().state == "stopped")

        // Asked after shutdown, a run ends at once.
        let late = await scheduler.requestFullRun(trigger: "late")
        #expect(await scheduler.run(late)?.state == .cancelled)
    }

    @Test func shutdownPastTheGracePeriodSkipsWhatIsLeftWithoutLosingIt() async throws {
        let batchGate = AsyncGate()
        let rig = Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(2000), batchGate: batchGate) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
            settings.shutdownGracePeriod = .milliseconds(50)
        }
        let running = rig.start()
        let id = await rig.scheduler.requestFullRun(trigger: "test")
        let scheduler = rig.scheduler
        #expect(await eventually(timeout: .seconds(5)) {
            let queued = await scheduler.status().batcher.queued
            return rig.upstream.inFlight == 2 && queued == 3
        })
        try await rig.shutdown(running)

        let run = try #require(await scheduler.run(id))
        #expect(run.state == .cancelled)
        #expect(run.counts.batchesPlanned == 5)
        #expect(run.counts.batchesSkipped == 5)
        #expect(run.counts.chatsSkipped == 50)
        #expect(run.counts.batchesDone == 0 && run.counts.batchesFailed == 0)
        #expect(rig.store.storeCalls.isEmpty)
        Self.expectBalanced(run)
        #expect(try rig.metrics.expectCounter("sync_runs_total", [("kind", "manual_full"), ("result", "cancelled")]).totalValue == 1)
    }

    @Test func requestsBeforeStartWaitForIt() async throws {
        let rig = Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(15)) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        let id = await rig.scheduler.requestFullRun(trigger: "early")
        #expect(await rig.scheduler.status().state == "idle")
        #expect(await rig.scheduler.run(id)?.state == .running)
        let running = rig.start()
        #expect(await rig.ended(id)?.state == .completed)
        try await rig.shutdown(running)
    }

    // MARK: Status

    @Test func statusEncodesForTheStatusRoute() async throws {
        let rig = Rig(now: Self.utc("2026-11-25T02:50:00.000Z"), chats: SyncDoubles.chats(15))
        let running = rig.start()
        #expect(await rig.clock.waitForSleepers(atLeast: 2))
        let id = await rig.scheduler.requestFullRun(trigger: "admin")
        _ = await rig.ended(id)
        let response = HTTPResponse.json(await rig.scheduler.status())
        #expect(response.status == 200)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        #expect(json["state"] as? String == "running")
        let schedule = try #require(json["schedule"] as? [String: Any])
        #expect(schedule["next_full_run_at"] as? String == "2026-11-25T03:00:00.000Z")
        #expect(schedule["next_interval_run_at"] as? String == "2026-11-25T03:05:00.000Z")
        #expect(schedule["time_zone"] as? String == Scheduler.Settings().timeZone.identifier)
        let recent = try #require(json["recent"] as? [[String: Any]])
        #expect(recent.first?["id"] as? String == id.rawValue)
        #expect(recent.first?["started_at"] as? String == "2026-11-25T02:50:00.000Z")
        let totals = try #require(json["totals"] as? [String: Any])
        #expect(totals["chats_refreshed"] as? Int == 15)
        let batcher = try #require(json["batcher"] as? [String: Any])
        #expect(batcher["max_in_flight"] as? Int == 2)
        #expect((json["running"] as? [Any])?.isEmpty == true)
        try await rig.shutdown(running)
    }
}
