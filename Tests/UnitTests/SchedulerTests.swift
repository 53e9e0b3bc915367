import ChatRuntime
import Foundation
import Logging
import MetricsTestKit
import ServiceLifecycle
import TestSupport
import Testing

@testable import Actors

/// The scheduler in the one mode it has: a leader-elected, shared pipeline over a real
/// redis-server (started per test on a free loopback port), with in-memory upstream and store
/// doubles and a manual sync clock. The whole pipeline runs as in production: elector, batcher,
/// stream consumer and scheduler as services of one group.
@Suite("Scheduler", .serialized, .timeLimit(.minutes(1)))
struct SchedulerTests {
    static func utc(_ text: String) -> Date {
        ISO8601Timestamp.date(from: text)!
    }

    /// A scheduler on a manual clock with in-memory upstream and store over a real Redis, run in
    /// a service group with the rest of the pipeline.
    struct Rig {
        let clock: ManualSyncClock
        let upstream: FakeUpstream
        let store: FakeStore
        let metrics = TestMetrics()
        let redis: RedisServer
        let loop: EventLoop
        let supervisor: RedisSupervisor
        let scheduler: Scheduler
        let batcher: Batcher
        let consumer: BatchStreamConsumer
        let redisChanges: AsyncStream<RedisStateChange>.Continuation
        let group: ServiceGroup

        init(
            now: Date,
            chats: [ChatID] = [],
            batchGate: AsyncGate = AsyncGate(open: true),
            listGate: AsyncGate = AsyncGate(open: true),
            storeGate: AsyncGate = AsyncGate(open: true),
            shutdownGracePeriod: Duration = .seconds(10),
            configure: (inout Scheduler.Settings) -> Void = { _ in }
        ) async throws {
            clock = ManualSyncClock(now: now)
            upstream = FakeUpstream(chats: chats, batchGate: batchGate, listGate: listGate)
            store = FakeStore(gate: storeGate)
            var settings = Scheduler.Settings()
            settings.batchSize = 10
            settings.pageSize = 100
            settings.maxBatchesInFlight = 2
            settings.intervalJitter = 0
            settings.pageBackoff = Backoff(initial: .zero, maximum: .zero, jitter: 0)
            configure(&settings)
            redis = try await RedisServer.start(logger: SyncDoubles.logger)
            loop = EventLoop(name: "scheduler-tests")
            supervisor = RedisSupervisor(
                endpoint: redis.endpoint(), loop: loop,
                policy: .init(
                    maxRetries: 2, backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(100)),
                    probeInterval: .milliseconds(200)),
                connectionOptions: RedisConnectionOptions(
                    connectTimeout: .milliseconds(500), commandTimeout: .seconds(2)),
                logger: SyncDoubles.logger)
            var coordinationSettings = CoordinationSettings(instanceID: "scheduler-test")
            // Long enough that no test here loses its one leader by accident: a lease lapsed under
            // AddressSanitizer (3 s) and its run re-read its last page after leading again.
            coordinationSettings.lockTTL = .seconds(10)
            coordinationSettings.maintenanceInterval = .milliseconds(50)
            coordinationSettings.pollInterval = .milliseconds(50)
            coordinationSettings.claimMinIdle = .seconds(30)
            let coordination = SyncCoordination(supervisor: supervisor, loop: loop, settings: coordinationSettings)
            let elector = LeaderElector(
                supervisor: supervisor, loop: loop, instanceID: coordinationSettings.instanceID,
                ttl: coordinationSettings.lockTTL, metricsFactory: metrics, logger: SyncDoubles.logger)
            batcher = Batcher(
                upstream: upstream, store: store, clock: clock, loop: loop,
                concurrency: .init(mode: .fixed, maximum: settings.maxBatchesInFlight), metricsFactory: metrics,
                logger: SyncDoubles.logger)
            consumer = BatchStreamConsumer(
                supervisor: supervisor, loop: loop, settings: coordinationSettings, errorLimit: settings.errorLimit,
                batcher: batcher, clock: clock, shutdownGracePeriod: shutdownGracePeriod, metricsFactory: metrics,
                logger: SyncDoubles.logger)
            let (changes, continuation) = AsyncStream.makeStream(of: RedisStateChange.self)
            redisChanges = continuation
            scheduler = Scheduler(
                settings: settings, upstream: upstream, store: store, clock: clock, redisStateChanges: changes,
                coordination: coordination, elector: elector, consumer: consumer, batcher: batcher,
                random: SeededRandom(seed: 42), metricsFactory: metrics, logger: SyncDoubles.logger)
            group = ServiceGroup(
                configuration: .init(
                    services: [supervisor, elector, batcher, consumer, scheduler], logger: SyncDoubles.logger))
        }

        func start() async throws -> Task<Void, any Error> {
            let group = group
            let task = Task { try await group.run() }
            let supervisor = supervisor
            try #require(await eventually(timeout: .seconds(10)) { await supervisor.state == .ready })
            return task
        }

        /// Triggers graceful shutdown, waits for the pipeline to return, stops Redis.
        func shutdown(_ running: Task<Void, any Error>) async throws {
            await group.triggerGracefulShutdown()
            try await running.value
            loop.stop()
            await redis.stop()
        }

        /// The run once it has ended; nil if it had not within 30 s.
        func ended(_ id: RunID) async -> SyncRun? {
            let scheduler = scheduler
            // 30 s: a bound, not a speed; under AddressSanitizer beside the whole suite a run
            // that takes under a second alone was seen to need more than 10.
            let ended = await eventually(timeout: .seconds(30)) {
                let state = await scheduler.run(id)?.state
                return state != .running && state != .queued
            }
            return ended ? await scheduler.run(id) : nil
        }

        /// The first ended run of `kind`; nil if none had within 30 s.
        func ended(kind: SyncRun.Kind) async -> SyncRun? {
            let scheduler = scheduler
            let found = await eventually(timeout: .seconds(30)) {
                await scheduler.status().recent.contains { $0.kind == kind }
            }
            return found ? await scheduler.status().recent.last { $0.kind == kind } : nil
        }
    }

    /// No batch or chat lost from the books.
    static func expectBalanced(_ run: SyncRun, sourceLocation: SourceLocation = #_sourceLocation) {
        let counts = run.counts
        #expect(
            counts.batchesPlanned == counts.batchesDone + counts.batchesFailed + counts.batchesSkipped,
            sourceLocation: sourceLocation)
        #expect(
            counts.chatsPlanned == counts.chatsRefreshed + counts.chatsNotFound + counts.chatsFailed
                + counts.chatsSkipped,
            sourceLocation: sourceLocation)
    }

    // MARK: The daily full run

    @Test func fullRunStartsAtThreeNotBeforeAndRefreshesEveryChatOnce() async throws {
        let chats = SyncDoubles.chats(250)
        let rig = try await Rig(now: Self.utc("2026-11-25T02:50:00.000Z"), chats: chats) { settings in
            settings.batchSize = 7
            settings.maxBatchesInFlight = 3
            settings.intervalRunsEnabled = false
        }
        let running = try await rig.start()
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
        // Batches are cut per page (100 chats: 15 batches, the last of 2): 15 + 15 + 8.
        #expect(rig.upstream.batchCalls.count == 38)
        #expect(rig.upstream.peakInFlight <= 3)
        #expect(run.counts.chatsConsidered == 250)
        #expect(run.counts.chatsPlanned == 250)
        #expect(run.counts.chatsRefreshed == 250)
        #expect(run.counts.batchesPlanned == 38)
        #expect(run.counts.batchesDone == 38)
        Self.expectBalanced(run)

        // The next one is tomorrow's.
        let scheduler = rig.scheduler
        #expect(
            await eventually(timeout: .seconds(5)) {
                await scheduler.status().schedule.nextFullRunAt == Self.utc("2026-11-26T03:00:00.000Z")
            })
        #expect(
            try rig.metrics.expectCounter("sync_runs_total", [("kind", "full"), ("result", "completed")]).totalValue
                == 1)
        #expect(try rig.metrics.expectCounter("sync_batches_total", [("result", "written")]).totalValue == 38)
        #expect(try rig.metrics.expectCounter("sync_chats_refreshed_total").totalValue == 250)
        #expect(try rig.metrics.expectGauge("sync_run_in_progress", [("kind", "full")]).lastValue == 0)
        #expect(try rig.metrics.expectTimer("sync_run_duration_seconds", [("kind", "full")]).values.count == 1)
        try await rig.shutdown(running)
    }

    @Test func manualFullRequestJoinsTheFullRunGoing() async throws {
        let chats = SyncDoubles.chats(30)
        let listGate = AsyncGate()
        let rig = try await Rig(now: Self.utc("2026-11-25T02:50:00.000Z"), chats: chats, listGate: listGate) {
            settings in
            settings.intervalRunsEnabled = false
        }
        let running = try await rig.start()
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
        // Every chat was written by both runs. Batches are delivered at least once
        // (docs/COORDINATION.md), and a batch delivered again under a slow build (seen once under
        // AddressSanitizer) writes its chats a third time; a chat the manual run missed would
        // still show one write.
        let writes = rig.store.writes
        #expect(
            writes.count == 30 && writes.values.allSatisfy { $0 >= 2 }, "writes per chat: \(writes.values.sorted())")
        try await rig.shutdown(running)
    }

    // MARK: Interval runs

    @Test func intervalRunRefreshesTrackedChatsStaleByTheNextRun() async throws {
        let t0 = Self.utc("2026-11-25T10:00:00.000Z")
        let names = ["a-stale", "b-soon", "c-fresh", "d-unknown", "e-soon", "f-fresh", "g-untracked"]
        let chat = Dictionary(uniqueKeysWithValues: names.map { ($0, SyncDoubles.chat($0)) })
        let rig = try await Rig(now: t0, chats: Array(chat.values)) { settings in
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

        let running = try await rig.start()
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
        #expect(
            await eventually(timeout: .seconds(10)) {
                await scheduler.status().recent.filter { $0.kind == .interval }.count == 2
            })
        #expect(rig.upstream.batchCalls.last == [chat["f-fresh"]!])
        try await rig.shutdown(running)
    }

    @Test func intervalTickWhileAFullRunIsGoingIsSkipped() async throws {
        let listGate = AsyncGate()
        let rig = try await Rig(
            now: Self.utc("2026-11-25T02:50:00.000Z"), chats: SyncDoubles.chats(20), listGate: listGate
        ) { settings in
            settings.updateInterval = .seconds(15 * 60)
        }
        for chat in SyncDoubles.chats(20) { rig.store.markRead(chat, at: rig.clock.now()) }
        let running = try await rig.start()
        #expect(await rig.clock.waitForSleepers(atLeast: 2))
        rig.clock.set(Self.utc("2026-11-25T03:00:00.000Z"))
        #expect(await eventually(timeout: .seconds(5)) { rig.upstream.listCalls.count == 1 })

        // 03:05: the interval tick finds the full run going and re-arms for 03:20.
        rig.clock.set(Self.utc("2026-11-25T03:05:00.000Z"))
        #expect(
            await eventually(timeout: .seconds(5)) {
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
        let rig = try await Rig(now: now, chats: chats) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        for chat in chats {
            rig.store.setEntry(chat, fetchedAt: now.addingTimeInterval(-7200))
            rig.store.markRead(chat, at: now.addingTimeInterval(-60))
        }
        let running = try await rig.start()
        let since = ContinuousClock.now
        // The first connection and the subscription's snapshot are not recoveries.
        rig.redisChanges.yield(RedisStateChange(from: .connecting, to: .connecting, since: since))
        rig.redisChanges.yield(RedisStateChange(from: .connecting, to: .ready, since: since))
        rig.redisChanges.yield(RedisStateChange(from: .ready, to: .reconnecting(attempt: 1), since: since))
        rig.redisChanges.yield(RedisStateChange(from: .reconnecting(attempt: 1), to: .unavailable, since: since))
        rig.redisChanges.yield(RedisStateChange(from: .unavailable, to: .ready, since: since))
        let catchUp = try #require(await rig.ended(kind: .catchUp))
        #expect(catchUp.trigger == "redis_ready")
        #expect(catchUp.state == .completed)
        #expect(catchUp.counts.chatsRefreshed == 5)
        #expect(await rig.scheduler.status().totals.runsStarted == 1)

        // Catch-ups are claimed like ticks, at most one a minute cluster-wide.
        rig.clock.advance(by: .seconds(61))
        rig.redisChanges.yield(RedisStateChange(from: .ready, to: .reconnecting(attempt: 1), since: since))
        rig.redisChanges.yield(RedisStateChange(from: .reconnecting(attempt: 1), to: .ready, since: since))
        let scheduler = rig.scheduler
        #expect(await eventually(timeout: .seconds(10)) { await scheduler.status().totals.runsCompleted == 2 })
        #expect(await rig.scheduler.status().totals.runsStarted == 2)
        #expect(Scheduler.isRecovery(from: .connecting) == false)
        try await rig.shutdown(running)
    }

    @Test func catchUpRequestsWithinAMinuteStartOneRun() async throws {
        let chats = SyncDoubles.chats(5)
        let batchGate = AsyncGate()
        let rig = try await Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: chats, batchGate: batchGate) {
            settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        for chat in chats { rig.store.markRead(chat, at: rig.clock.now()) }
        let running = try await rig.start()
        await rig.scheduler.requestCatchUpRun()
        #expect(await eventually(timeout: .seconds(5)) { rig.upstream.inFlight == 1 })
        await rig.scheduler.requestCatchUpRun()
        let status = await rig.scheduler.status()
        #expect(status.running.map(\.kind) == [.catchUp])
        #expect(status.totals.runsStarted == 1)
        batchGate.open()
        let run = try #require(await rig.ended(kind: .catchUp))
        #expect(run.state == .completed)
        #expect(rig.upstream.batchCalls.count == 1)
        try await rig.shutdown(running)
    }

    // MARK: Failures

    @Test func failedAndPartialBatchesAreCountedAndLeaveTheStoreUntouched() async throws {
        let chats = SyncDoubles.chats(30)
        let rig = try await Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: chats) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        rig.upstream.state.withLock { state in
            state.failBatchesWith = [chats[15]]
            state.omitted = [chats[3]]
            state.malformed = [chats[25]]
        }
        let running = try await rig.start()
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
        let rig = try await Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: chats) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        rig.upstream.state.withLock { $0.failBatchesWith = Set(chats) }
        let running = try await rig.start()
        let run = try #require(await rig.ended(await rig.scheduler.requestFullRun(trigger: "test")))
        #expect(run.state == .failed)
        #expect(run.failure == "every batch failed upstream")
        #expect(run.counts.batchesFailed == 2)
        #expect(rig.store.storeCalls.isEmpty)
        #expect(
            try rig.metrics.expectCounter("sync_runs_total", [("kind", "manual_full"), ("result", "failed")]).totalValue
                == 1)
        try await rig.shutdown(running)
    }

    @Test func pageFailureIsRetriedWithBackoffOnTheSyncClock() async throws {
        let rig = try await Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(250)) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
            settings.pageRetries = 3
            settings.pageBackoff = Backoff(initial: .seconds(5), maximum: .seconds(5), jitter: 0)
        }
        rig.upstream.state.withLock { $0.pageFailures[1] = 2 }
        let running = try await rig.start()
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
        let rig = try await Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(250)) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
            settings.pageRetries = 2
            settings.batchSize = 30
        }
        rig.upstream.state.withLock { $0.pageFailures[1] = .max }
        let running = try await rig.start()
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
        let rig = try await Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(10)) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        rig.upstream.state.withLock { state in
            state.pageFailures[0] = .max
            state.pageFailureCode = .unauthorized
        }
        let running = try await rig.start()
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
        let rig = try await Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: chats, storeGate: storeGate) {
            settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        let running = try await rig.start()
        let id = await rig.scheduler.requestFullRun(trigger: "test")
        let scheduler = rig.scheduler
        let consumer = rig.consumer
        // Two batches writing (the batcher's limit), four held by the reader (twice the limit).
        #expect(
            await eventually(timeout: .seconds(5)) {
                let held = await consumer.status.held
                return rig.store.writing == 2 && held == 4
            })
        // The producer appended one page (10 batches) and waits: the backlog (8, twice the hold
        // limit for one instance) is reached.
        #expect(await eventually(timeout: .seconds(5)) { await scheduler.run(id)?.counts.batchesPlanned == 10 })
        let going = try #require(await scheduler.run(id))
        #expect(going.counts.batchesSettled == 0)
        // The next page was listed while the first was appended, and waits with the producer.
        #expect(rig.upstream.listCalls.count == 2)
        #expect(rig.upstream.batchCalls.count == 2)

        storeGate.open()
        let run = try #require(await rig.ended(id))
        #expect(run.state == .completed)
        #expect(run.pagesRead == 20)
        #expect(rig.store.writes.count == 2000 && rig.store.writes.values.allSatisfy { $0 == 1 })
        #expect(await scheduler.status().batcher.peakInFlight == 2)
        try await rig.shutdown(running)
    }

    /// Graceful shutdown stops producing at once (the run stays `running` in Redis for the next
    /// leader, which resumes it at its cursor), lets the batches in hand finish and books them,
    /// then releases the lock: nothing is lost, nothing is counted twice.
    @Test func shutdownLetsTheBatchesInHandFinishAndHandsTheRunOver() async throws {
        let storeGate = AsyncGate()
        let rig = try await Rig(
            now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(2000), storeGate: storeGate,
            shutdownGracePeriod: .seconds(30)
        ) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        let running = try await rig.start()
        let id = await rig.scheduler.requestFullRun(trigger: "test")
        let scheduler = rig.scheduler
        let consumer = rig.consumer
        #expect(
            await eventually(timeout: .seconds(5)) {
                let held = await consumer.status.held
                return rig.store.writing == 2 && held == 4
            })
        await rig.group.triggerGracefulShutdown()
        #expect(await eventually(timeout: .seconds(5)) { await scheduler.status().state != "running" })
        storeGate.open()
        try await running.value

        let fields = try await rig.redis.cli(
            "HMGET", CoordinationKeys.run(id), "state", "batches_planned", "batches_done", "batches_skipped")
        let values = fields.split(separator: "\n").map(String.init)
        #expect(values.first == "running")
        #expect(values.dropFirst().first == "10")
        // The four batches in hand were processed and booked; the other six wait in the stream.
        #expect(values.dropFirst(2).first == "4")
        #expect(values.dropFirst(3).first == "0")
        #expect(rig.store.writes.count == 40)
        // None pending: the six others were never delivered and wait for the next leader's readers.
        #expect(try await rig.redis.cli("XPENDING", CoordinationKeys.batches, CoordinationKeys.group).hasPrefix("0"))
        #expect(try await rig.redis.cli("XLEN", CoordinationKeys.batches) == "10")
        // The lock was released last, for the next leader to take at once.
        #expect(try await rig.redis.cli("EXISTS", CoordinationKeys.leader) == "0")
        rig.loop.stop()
        await rig.redis.stop()
    }

    @Test func shutdownPastTheGracePeriodLeavesWhatIsLeftPendingForAnotherInstance() async throws {
        let batchGate = AsyncGate()
        let rig = try await Rig(
            now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(2000), batchGate: batchGate,
            shutdownGracePeriod: .milliseconds(50)
        ) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        let running = try await rig.start()
        let id = await rig.scheduler.requestFullRun(trigger: "test")
        let consumer = rig.consumer
        #expect(
            await eventually(timeout: .seconds(5)) {
                let held = await consumer.status.held
                return rig.upstream.inFlight == 2 && held == 4
            })
        await rig.group.triggerGracefulShutdown()
        try await running.value

        let fields = try await rig.redis.cli(
            "HMGET", CoordinationKeys.run(id), "state", "batches_done", "batches_skipped")
        #expect(fields.split(separator: "\n").map(String.init) == ["running", "0", "0"])
        #expect(rig.store.storeCalls.isEmpty)
        // The four batches it held stay pending under its name, for another instance to claim.
        let pending = try await rig.redis.cli("XPENDING", CoordinationKeys.batches, CoordinationKeys.group)
        #expect(pending.split(separator: "\n").first == "4")
        rig.loop.stop()
        await rig.redis.stop()
    }

    @Test func requestsWhileRedisIsAwayAreKeptAndHandedOver() async throws {
        let rig = try await Rig(now: Self.utc("2026-11-25T12:00:00.000Z"), chats: SyncDoubles.chats(15)) { settings in
            settings.intervalRunsEnabled = false
            settings.fullRunsEnabled = false
        }
        // Nothing runs yet: the request is kept on this instance, queued.
        let id = await rig.scheduler.requestFullRun(trigger: "early")
        #expect(await rig.scheduler.status().state == "idle")
        #expect(await rig.scheduler.run(id)?.state == .queued)
        let running = try await rig.start()
        #expect(await rig.ended(id)?.state == .completed)
        try await rig.shutdown(running)
    }

    // MARK: Status

    @Test func statusEncodesForTheStatusRoute() async throws {
        let rig = try await Rig(now: Self.utc("2026-11-25T02:50:00.000Z"), chats: SyncDoubles.chats(15))
        let running = try await rig.start()
        #expect(await rig.clock.waitForSleepers(atLeast: 2))
        let id = await rig.scheduler.requestFullRun(trigger: "admin")
        try #require(await rig.ended(id) != nil)
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
        #expect(batcher["concurrency_limit"] as? Int == 2)
        #expect((json["running"] as? [Any])?.isEmpty == true)
        try await rig.shutdown(running)
    }
}
