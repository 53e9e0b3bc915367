import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Keeps the participants cache fresh in the background (DESIGN §2): interval runs over the
/// tracked chats, the daily full run over every chat upstream lists, manual full runs, and a
/// catch-up run when Redis comes back. Batches go to a ``Batcher`` through its bounded buffer, so
/// a slow upstream or Redis slows the runs down instead of growing memory.
///
/// One run of each kind at a time (see ``SyncRunLedger/admission(for:)``): a full request while a
/// full run is going joins it, an interval tick while a full or interval run is going is
/// skipped, a catch-up request joins a going interval or catch-up run.
///
/// Requests made before ``run()`` starts wait for it. Graceful shutdown stops the schedule and
/// the producers at once, lets the batches already accepted finish within
/// ``Settings/shutdownGracePeriod``, then cancels the rest; runs cut short end `cancelled` with
/// every batch accounted for.
public actor Scheduler: Service {
    enum Lifecycle: String {
        case idle, running, stopping, stopped
    }

    /// How a run's producer ended.
    enum ProducerEnd: Hashable {
        case finished
        case failed(String)
        case cancelled
    }

    private enum PageRead {
        case page(ChatListPage)
        case failed(String)
        case cancelled
    }

    /// The parts of ``run()``, so that whichever ends first decides what happens to the others.
    private enum Part {
        case batcher, producers, shutdownDeadline
    }

    private let settings: Settings
    private let upstream: any ParticipantsUpstream
    private let store: any ParticipantsStore
    private let clock: any SyncClock
    private let batcher: Batcher
    private let redisStateChanges: AsyncStream<RedisStateChange>?
    private let logger: Logger
    private let metrics: SyncMetrics
    private let schedule: DailySchedule
    private var random: ErasedRandom
    private var ledger: SyncRunLedger
    private var lifecycle = Lifecycle.idle
    private let launches: AsyncStream<RunID>
    private let launchContinuation: AsyncStream<RunID>.Continuation
    private let stopSignal: AsyncStream<Void>
    private let stopContinuation: AsyncStream<Void>.Continuation
    /// Runs whose producer has been launched.
    private var executing: Set<RunID> = []
    private var settlementWaiters: [RunID: CheckedContinuation<Void, Never>] = [:]
    private var nextIntervalRunAt: Date?
    private var nextFullRunAt: Date?

    /// - Parameters:
    ///   - clock: the wall clock runs are planned by; tests pass a ``ManualSyncClock``.
    ///   - redisStateChanges: the supervisor's state changes (`RedisSupervisor.stateChanges()`);
    ///     a change to `ready` from `reconnecting` or `unavailable` starts a catch-up run. The
    ///     first connection (`connecting` → `ready`) does not.
    ///   - random: jitter and run-id suffixes; tests pass a ``SeededRandom``.
    ///   - metricsFactory: where the `sync_*` metrics go.
    public init(
        settings: Settings,
        upstream: any ParticipantsUpstream,
        store: any ParticipantsStore,
        clock: any SyncClock = SystemSyncClock(),
        redisStateChanges: AsyncStream<RedisStateChange>? = nil,
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) {
        settings.validate()
        self.settings = settings
        self.upstream = upstream
        self.store = store
        self.clock = clock
        self.redisStateChanges = redisStateChanges
        self.random = ErasedRandom(base: random)
        self.logger = logger
        self.metrics = SyncMetrics(factory: metricsFactory)
        self.schedule = DailySchedule(hour: settings.fullUpdateHour, timeZone: settings.timeZone)
        self.ledger = SyncRunLedger(historyLimit: settings.historyLimit, errorLimit: settings.errorLimit)
        self.batcher = Batcher(
            upstream: upstream, store: store, clock: clock, bufferCapacity: settings.bufferedBatches,
            maxBatchesInFlight: settings.maxBatchesInFlight, logger: logger)
        (launches, launchContinuation) = AsyncStream.makeStream(of: RunID.self)
        (stopSignal, stopContinuation) = AsyncStream.makeStream(of: Void.self)
    }

    // MARK: Service

    public func run() async throws {
        precondition(lifecycle == .idle, "Scheduler.run may only be called once")
        lifecycle = .running
        logger.info("scheduler started", metadata: [
            "sync.update_interval": "\(settings.updateInterval)",
            "sync.full_update_hour": "\(settings.fullUpdateHour)",
            "sync.time_zone": "\(settings.timeZone.identifier)",
            "sync.batch_size": "\(settings.batchSize)",
            "sync.max_batches_in_flight": "\(settings.maxBatchesInFlight)",
        ])
        await withTaskGroup(of: Part.self) { group in
            group.addTask {
                await self.batcher.run { outcome in await self.record(outcome) }
                return .batcher
            }
            group.addTask {
                await self.produceUntilShutdown()
                return .producers
            }
            group.addTask {
                await self.shutdownDeadline()
                return .shutdownDeadline
            }
            while let part = await group.next() {
                switch part {
                case .batcher:
                    continue
                case .producers, .shutdownDeadline:
                    // Either every run is settled, or the grace period is over and the batcher
                    // must give up what it still holds.
                    group.cancelAll()
                }
            }
        }
        lifecycle = .stopped
        logger.info("scheduler stopped")
    }

    // MARK: Requests

    /// Starts a manual full run, or joins the full run already going; returns the run's id.
    @discardableResult
    public func requestFullRun(trigger: String) -> RunID {
        startRun(.manualFull, trigger: trigger)
    }

    /// Starts a catch-up run (interval-style, now), or joins the interval or catch-up run already
    /// going; returns the run's id.
    @discardableResult
    public func requestCatchUpRun(trigger: String = "redis_ready") -> RunID {
        startRun(.catchUp, trigger: trigger)
    }

    /// Runs going, recent runs, totals, the schedule and the batcher's load.
    public func status() -> SyncStatus {
        let load = batcher.load
        return SyncStatus(
            state: lifecycle.rawValue,
            running: ledger.running,
            recent: ledger.recent,
            totals: ledger.totals,
            schedule: .init(
                intervalRunsEnabled: settings.intervalRunsEnabled,
                fullRunsEnabled: settings.fullRunsEnabled,
                catchUpRunsEnabled: settings.catchUpRunsEnabled,
                updateIntervalSeconds: settings.updateInterval.timeInterval,
                fullUpdateHour: settings.fullUpdateHour,
                timeZone: settings.timeZone.identifier,
                nextIntervalRunAt: nextIntervalRunAt,
                nextFullRunAt: nextFullRunAt),
            batcher: .init(
                queued: load.queued, inFlight: load.inFlight, peakInFlight: load.peakInFlight,
                bufferCapacity: settings.bufferedBatches, maxInFlight: settings.maxBatchesInFlight,
                batchSize: settings.batchSize))
    }

    /// The run `id`, going or among the recent ones.
    public func run(_ id: RunID) -> SyncRun? {
        ledger.run(id)
    }

    // MARK: Starting and ending runs

    @discardableResult
    private func startRun(_ kind: SyncRun.Kind, trigger: String) -> RunID {
        switch ledger.admission(for: kind) {
        case .join(let id):
            ledger.update(id) { $0.joinedRequests += 1 }
            logger.info("run request joined the run going", metadata: [
                "sync.run_id": "\(id)", "sync.kind": "\(kind.rawValue)", "sync.trigger": "\(trigger)",
            ])
            return id
        case .skip(let covering):
            logger.info("run skipped: the run going covers it", metadata: [
                "sync.run_id": "\(covering)", "sync.kind": "\(kind.rawValue)", "sync.trigger": "\(trigger)",
            ])
            return covering
        case .start:
            let now = clock.now()
            var id = RunID(kind: kind, startedAt: now, random: &random)
            while ledger.run(id) != nil { id = RunID(kind: kind, startedAt: now, random: &random) }
            ledger.begin(SyncRun(id: id, kind: kind, trigger: trigger, startedAt: now))
            metrics.runStarted(kind)
            switch lifecycle {
            case .idle, .running:
                launchContinuation.yield(id)
            case .stopping, .stopped:
                finish(id, end: .cancelled)
            }
            return id
        }
    }

    /// One run from its first batch to its end.
    private func execute(_ id: RunID) async {
        guard let run = ledger.run(id), run.state == .running else { return }
        let logger = runLogger(run)
        logger.info("sync run started", metadata: ["sync.trigger": "\(run.trigger)"])
        let end = run.kind.isFull ? await produceFullRun(id, logger: logger) : await produceStaleRun(id)
        ledger.producerFinished(id)
        await waitUntilSettled(id)
        finish(id, end: end)
    }

    private func finish(_ id: RunID, end: ProducerEnd) {
        guard let counts = ledger.run(id)?.counts else { return }
        let state: SyncRun.State
        var failure: String?
        switch end {
        case .cancelled:
            state = .cancelled
        case .failed(let reason):
            state = .failed
            failure = reason
        case .finished where counts.batchesSkipped > 0:
            state = .cancelled
        case .finished where counts.batchesPlanned > 0 && counts.batchesFailed == counts.batchesPlanned:
            state = .failed
            failure = "every batch failed upstream"
        case .finished:
            state = .completed
        }
        guard let run = ledger.finish(id, state: state, failure: failure, at: clock.now()) else { return }
        executing.remove(id)
        metrics.runFinished(run)
        var metadata = Self.countsMetadata(run)
        metadata["sync.state"] = "\(state.rawValue)"
        metadata["sync.duration_seconds"] = "\(max(0, (run.finishedAt ?? run.startedAt).timeIntervalSince(run.startedAt)))"
        if let failure { metadata["sync.failure"] = "\(failure)" }
        let runLogger = runLogger(run)
        if state == .completed {
            runLogger.info("sync run ended", metadata: metadata)
        } else {
            runLogger.warning("sync run ended", metadata: metadata)
        }
    }

    /// Books a batch's outcome (called by the batcher).
    private func record(_ outcome: BatchOutcome) {
        metrics.batchFinished(outcome)
        guard let run = ledger.apply(outcome, at: clock.now()) else {
            logger.error("batch outcome for a run not going", metadata: ["sync.run_id": "\(outcome.runID)"])
            return
        }
        if run.counts.batchesSettled % settings.progressLogInterval == 0 {
            runLogger(run).info("sync run progress", metadata: Self.countsMetadata(run))
        }
        if ledger.isSettled(run.id), let waiter = settlementWaiters.removeValue(forKey: run.id) {
            waiter.resume()
        }
    }

    private func waitUntilSettled(_ id: RunID) async {
        guard !ledger.isSettled(id) else { return }
        await withCheckedContinuation { continuation in
            settlementWaiters[id] = continuation
        }
    }

    // MARK: Producers

    /// Hands `chats` to the batcher as the run's next batch; false when the batcher refused it
    /// (shutdown).
    private func submit(_ chats: [ChatID], for id: RunID) async -> Bool {
        var number = 0
        ledger.update(id) { run in
            run.counts.batchesPlanned += 1
            run.counts.chatsPlanned += chats.count
            number = run.counts.batchesPlanned
        }
        do {
            try await batcher.submit(SyncBatch(runID: id, number: number, chats: chats))
            return true
        } catch {
            ledger.update(id) { run in
                run.counts.batchesPlanned -= 1
                run.counts.chatsPlanned -= chats.count
            }
            return false
        }
    }

    /// Interval and catch-up runs: the tracked chats that are stale, or will be by the time the
    /// next interval run may start, or have no entry.
    private func produceStaleRun(_ id: RunID) async -> ProducerEnd {
        let now = clock.now()
        var seen: Set<ChatID> = []
        let tracked = await store.trackedChats(since: now.addingTimeInterval(-settings.trackWindow.timeInterval))
            .filter { seen.insert($0).inserted }
        ledger.update(id) { $0.counts.chatsConsidered = tracked.count }
        let horizon = now.addingTimeInterval(
            IntervalJitter.longest(interval: settings.updateInterval, jitter: settings.intervalJitter).timeInterval)
        var accumulator = BatchAccumulator(batchSize: settings.batchSize)
        var start = 0
        while start < tracked.count {
            if Task.isCancelled { return .cancelled }
            let chunk = Array(tracked[start..<min(start + settings.selectionChunkSize, tracked.count)])
            start += chunk.count
            let fetchedAt = await store.fetchedAt(of: chunk)
            let due = StaleSelection.due(
                chunk, fetchedAt: fetchedAt, horizon: horizon, staleThreshold: settings.staleThreshold)
            for batch in accumulator.add(due) {
                guard await submit(batch, for: id) else { return .cancelled }
            }
        }
        if let last = accumulator.flush(), !(await submit(last, for: id)) { return .cancelled }
        return .finished
    }

    /// Full runs: every chat upstream lists, page by page, each page's chats handed over before
    /// the next page is read (the batcher's buffer paces the reading).
    private func produceFullRun(_ id: RunID, logger: Logger) async -> ProducerEnd {
        var accumulator = BatchAccumulator(batchSize: settings.batchSize)
        var token: String?
        var pageNumber = 0
        while true {
            pageNumber += 1
            let page: ChatListPage
            switch await readPage(pageNumber, token: token, for: id, logger: logger) {
            case .cancelled:
                return .cancelled
            case .failed(let reason):
                // The chats listed so far still get their refresh.
                if let rest = accumulator.flush(), !(await submit(rest, for: id)) { return .cancelled }
                return .failed(reason)
            case .page(let read):
                page = read
            }
            ledger.update(id) { run in
                run.pagesRead = (run.pagesRead ?? 0) + 1
                run.counts.chatsConsidered += page.chatIDs.count
                run.counts.idsRejected += page.rejectedIDs.count
            }
            if !page.rejectedIDs.isEmpty {
                let sample = page.rejectedIDs.prefix(5).map { String(reflecting: String($0.prefix(64))) }
                let message = "page \(pageNumber): \(page.rejectedIDs.count) invalid chat ids skipped: \(sample.joined(separator: ", "))"
                logger.warning("upstream listed invalid chat ids", metadata: ["sync.page": "\(pageNumber)", "error": "\(message)"])
                ledger.recordError(id, message, at: clock.now())
            }
            for batch in accumulator.add(page.chatIDs) {
                guard await submit(batch, for: id) else { return .cancelled }
            }
            guard let next = page.nextPageToken else { break }
            if next == token {
                if let rest = accumulator.flush(), !(await submit(rest, for: id)) { return .cancelled }
                return .failed("upstream's chat list does not advance: page \(pageNumber) points to itself")
            }
            token = next
        }
        if let last = accumulator.flush(), !(await submit(last, for: id)) { return .cancelled }
        return .finished
    }

    /// One page of upstream's chat list, retried with backoff; authorization and other 4xx
    /// failures are not retried since another try cannot fix them.
    private func readPage(_ number: Int, token: String?, for id: RunID, logger: Logger) async -> PageRead {
        var attempt = 0
        while true {
            attempt += 1
            if Task.isCancelled { return .cancelled }
            do {
                return .page(try await upstream.listChats(pageSize: settings.pageSize, pageToken: token))
            } catch {
                if Task.isCancelled { return .cancelled }
                let message = "listing page \(number) failed (attempt \(attempt)): \(error)"
                logger.warning("listing chats failed", metadata: ["sync.page": "\(number)", "error": "\(error)"])
                ledger.recordError(id, message, at: clock.now())
                let retryable = error.code != .unauthorized && error.code != .rejected
                guard retryable, attempt <= settings.pageRetries else {
                    return .failed("listing page \(number) failed after \(attempt) attempts: \(error)")
                }
                let delay = settings.pageBackoff.delay(attempt: attempt, random: &random)
                do {
                    try await clock.sleep(until: clock.now().addingTimeInterval(delay.timeInterval))
                } catch {
                    return .cancelled
                }
            }
        }
    }

    // MARK: Schedule and shutdown

    /// Starts runs as they are requested until graceful shutdown (or cancellation), then stops
    /// producing and returns once every run has ended.
    private func produceUntilShutdown() async {
        await withTaskGroup(of: Void.self) { group in
            if settings.intervalRunsEnabled {
                group.addTask { await self.intervalLoop() }
            }
            if settings.fullRunsEnabled {
                group.addTask { await self.dailyLoop() }
            }
            if settings.catchUpRunsEnabled, let changes = redisStateChanges {
                group.addTask { await self.watchRedis(changes) }
            }
            for await id in launches.cancelOnGracefulShutdown() {
                executing.insert(id)
                group.addTask { await self.execute(id) }
            }
            beginStopping()
            group.cancelAll()
            await group.waitForAll()
        }
    }

    private func beginStopping() {
        guard lifecycle == .running else { return }
        lifecycle = .stopping
        launchContinuation.finish()
        batcher.close()
        stopContinuation.yield()
        stopContinuation.finish()
        nextIntervalRunAt = nil
        nextFullRunAt = nil
        for run in ledger.running where !executing.contains(run.id) {
            finish(run.id, end: .cancelled)
        }
        let load = batcher.load
        logger.info("scheduler stopping", metadata: [
            "sync.runs_going": "\(ledger.running.count)",
            "sync.batches_queued": "\(load.queued)",
            "sync.batches_in_flight": "\(load.inFlight)",
        ])
    }

    /// Returns `shutdownGracePeriod` (real time) after shutdown began, or when cancelled.
    private func shutdownDeadline() async {
        for await _ in stopSignal { break }
        try? await Task.sleep(for: settings.shutdownGracePeriod)
    }

    private func intervalLoop() async {
        while true {
            let delay = IntervalJitter.delay(
                interval: settings.updateInterval, jitter: settings.intervalJitter, random: &random)
            let due = clock.now().addingTimeInterval(delay.timeInterval)
            nextIntervalRunAt = due
            do {
                try await clock.sleep(until: due)
            } catch {
                return
            }
            startRun(.interval, trigger: "schedule")
        }
    }

    private func dailyLoop() async {
        var lastDue: Date?
        while true {
            // Planned after the last run's instant too, so that a wall clock set back after a
            // run does not start the same day's run twice.
            let due = schedule.nextRun(after: max(clock.now(), lastDue ?? .distantPast))
            nextFullRunAt = due
            do {
                try await clock.sleep(until: due)
            } catch {
                return
            }
            lastDue = due
            startRun(.full, trigger: "schedule")
        }
    }

    private func watchRedis(_ changes: AsyncStream<RedisStateChange>) async {
        for await change in changes where change.to == .ready && Self.isRecovery(from: change.from) {
            logger.info("redis is back; catching up", metadata: ["redis.from": "\(change.from)"])
            startRun(.catchUp, trigger: "redis_ready")
        }
    }

    /// Whether reaching `ready` from `state` means Redis came back after an outage.
    static func isRecovery(from state: RedisState) -> Bool {
        switch state {
        case .reconnecting, .unavailable: true
        case .connecting, .ready, .stopped: false
        }
    }

    // MARK: Logging

    private func runLogger(_ run: SyncRun) -> Logger {
        var logger = logger
        logger[metadataKey: "sync.run_id"] = "\(run.id)"
        logger[metadataKey: "sync.kind"] = "\(run.kind.rawValue)"
        return logger
    }

    private static func countsMetadata(_ run: SyncRun) -> Logger.Metadata {
        let counts = run.counts
        var metadata: Logger.Metadata = [
            "sync.chats_considered": "\(counts.chatsConsidered)",
            "sync.chats_planned": "\(counts.chatsPlanned)",
            "sync.chats_refreshed": "\(counts.chatsRefreshed)",
            "sync.chats_not_found": "\(counts.chatsNotFound)",
            "sync.chats_failed": "\(counts.chatsFailed)",
            "sync.chats_skipped": "\(counts.chatsSkipped)",
            "sync.batches_planned": "\(counts.batchesPlanned)",
            "sync.batches_done": "\(counts.batchesDone)",
            "sync.batches_deferred": "\(counts.batchesDeferred)",
            "sync.batches_failed": "\(counts.batchesFailed)",
            "sync.batches_skipped": "\(counts.batchesSkipped)",
            "sync.errors": "\(run.errorsTotal)",
        ]
        if let pages = run.pagesRead { metadata["sync.pages_read"] = "\(pages)" }
        return metadata
    }
}

/// A concrete generator around an existential one: `inout some RandomNumberGenerator` parameters
/// cannot take an `any RandomNumberGenerator` directly.
private struct ErasedRandom: RandomNumberGenerator, Sendable {
    var base: any RandomNumberGenerator & Sendable

    mutating func next() -> UInt64 {
        base.next()
    }
}
