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
///
/// With a ``SyncCoordination`` (every instance of the service has one), the work is shared
/// with the other instances through Redis instead (docs/COORDINATION.md): one leader plans the
/// scheduled, catch-up and requested runs and appends their batches to a shared stream, every
/// instance's batcher takes batches from it, and runs are recorded in Redis, so any instance
/// shows them. A run whose leader stops is carried on by the next leader; graceful shutdown
/// releases the lock instead of cancelling runs.
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

    enum PageRead {
        case page(ChatListPage)
        case failed(String)
        case cancelled
    }

    /// The parts of ``run()``, so that whichever ends first decides what happens to the others.
    private enum Part {
        case batcher, producers, shutdownDeadline
    }

    /// A producer to start.
    enum Launch: Sendable {
        /// A run of this instance's own ledger.
        case local(RunID)
        /// A shared run this instance, as leader, took over.
        case shared(SharedRunRecord, LeaderLease, previousFence: Int64)
    }

    // Internal rather than private: Scheduler+Producers and Scheduler+Schedule use them.
    let settings: Settings
    let upstream: any ParticipantsUpstream
    let store: any ParticipantsStore
    let clock: any SyncClock
    let batcher: Batcher
    let redisStateChanges: AsyncStream<RedisStateChange>?
    let logger: Logger
    let metrics: SyncMetrics
    let schedule: DailySchedule
    var random: ErasedRandom
    var ledger: SyncRunLedger
    var lifecycle = Lifecycle.idle
    let launches: AsyncStream<Launch>
    let launchContinuation: AsyncStream<Launch>.Continuation
    let stopSignal: AsyncStream<Void>
    let stopContinuation: AsyncStream<Void>.Continuation
    /// Runs whose producer has been launched.
    var executing: Set<RunID> = []
    var settlementWaiters: [RunID: CheckedContinuation<Void, Never>] = [:]
    var nextIntervalRunAt: Date?
    var nextFullRunAt: Date?
    /// Set when the work is shared with other instances through Redis.
    let coordinator: Coordinator?
    /// Coordination state; see Scheduler+Coordination.
    var shared = SharedState()

    /// - Parameters:
    ///   - clock: the wall clock runs are planned by; tests pass a ``ManualSyncClock``.
    ///   - redisStateChanges: the supervisor's state changes (`RedisSupervisor.stateChanges()`);
    ///     a change to `ready` from `reconnecting` or `unavailable` starts a catch-up run. The
    ///     first connection (`connecting` → `ready`) does not.
    ///   - random: jitter and run-id suffixes; tests pass a ``SeededRandom``.
    ///   - metricsFactory: where the `sync_*` metrics go.
    ///   - coordination: share the work with other instances through Redis; nil runs
    ///     everything in this process (tests of the scheduler alone).
    public init(
        settings: Settings,
        upstream: any ParticipantsUpstream,
        store: any ParticipantsStore,
        clock: any SyncClock = SystemSyncClock(),
        redisStateChanges: AsyncStream<RedisStateChange>? = nil,
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        coordination: SyncCoordination? = nil,
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
        let batcher = Batcher(
            upstream: upstream, store: store, clock: clock, bufferCapacity: settings.bufferedBatches,
            maxBatchesInFlight: settings.maxBatchesInFlight, logger: logger)
        self.batcher = batcher
        self.coordinator = coordination.map { coordination in
            Coordinator(
                coordination, batcher: batcher, clock: clock, settings: settings,
                metrics: SyncMetrics(factory: metricsFactory), metricsFactory: metricsFactory, logger: logger)
        }
        (launches, launchContinuation) = AsyncStream.makeStream(of: Launch.self)
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
        let consumer = coordinator?.consumer
        await withTaskGroup(of: Part.self) { group in
            group.addTask {
                await self.batcher.run { outcome in
                    if outcome.delivery != nil, let consumer {
                        await self.count(outcome)
                        await consumer.settle(outcome)
                    } else {
                        await self.record(outcome)
                    }
                }
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
            var batcherDone = false
            var producersDone = false
            while let part = await group.next() {
                switch part {
                case .batcher:
                    batcherDone = true
                    if producersDone { group.cancelAll() }
                case .producers:
                    producersDone = true
                    // Local runs end only once settled, so the batcher holds nothing more; with
                    // a shared stream the batches in hand still finish within the grace period.
                    if batcherDone || consumer == nil { group.cancelAll() }
                case .shutdownDeadline:
                    // The grace period is over: the batcher must give up what it still holds.
                    group.cancelAll()
                }
            }
        }
        lifecycle = .stopped
        logger.info("scheduler stopped")
    }

    // MARK: Requests

    /// Starts a manual full run, or joins the full run already going; returns the run's id.
    ///
    /// Shared: the run is recorded in Redis (or joins the full run going there) and the leader,
    /// whichever instance it is, produces it; while Redis is away the request is kept here and
    /// handed over when it is back.
    @discardableResult
    public func requestFullRun(trigger: String) async -> RunID {
        if coordinator != nil { return await requestSharedFullRun(trigger: trigger) }
        return startRun(.manualFull, trigger: trigger)
    }

    /// Starts a catch-up run (interval-style, now), or joins the interval or catch-up run already
    /// going; returns the run's id. Shared: the leader starts one (nil until then).
    @discardableResult
    public func requestCatchUpRun(trigger: String = "redis_ready") async -> RunID? {
        if coordinator != nil {
            await requestSharedCatchUp(trigger: trigger)
            return nil
        }
        return startRun(.catchUp, trigger: trigger)
    }

    /// Runs going, recent runs, totals, the schedule, the batcher's load and, when shared, the
    /// coordination (leader, fence, stream). Shared runs are read from Redis.
    public func status() async -> SyncStatus {
        let load = batcher.load
        var running = ledger.running
        var recent = ledger.recent
        var coordination: CoordinationStatus?
        if coordinator != nil {
            let view = await sharedStatus()
            running = view.running
            recent = view.recent
            coordination = view.coordination
        }
        return SyncStatus(
            state: lifecycle.rawValue,
            running: running,
            recent: recent,
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
                batchSize: settings.batchSize),
            coordination: coordination)
    }

    /// The run `id`, going or among the recent ones (shared: as recorded in Redis).
    public func run(_ id: RunID) async -> SyncRun? {
        if coordinator != nil { return await sharedRun(id) }
        return ledger.run(id)
    }

    // MARK: Starting and ending runs

    @discardableResult
    func startRun(_ kind: SyncRun.Kind, trigger: String) -> RunID {
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
                launchContinuation.yield(.local(id))
            case .stopping, .stopped:
                finish(id, end: .cancelled)
            }
            return id
        }
    }

    /// One run from its first batch to its end.
    func execute(_ id: RunID) async {
        guard let run = ledger.run(id), run.state == .running else { return }
        let logger = runLogger(run)
        logger.info("sync run started", metadata: ["sync.trigger": "\(run.trigger)"])
        let end = run.kind.isFull ? await produceFullRun(id, logger: logger) : await produceStaleRun(id)
        ledger.producerFinished(id)
        await waitUntilSettled(id)
        finish(id, end: end)
    }

    func finish(_ id: RunID, end: ProducerEnd) {
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

    /// Counts a shared run's batch in this instance's totals and metrics; its run's books are
    /// in Redis.
    private func count(_ outcome: BatchOutcome) {
        guard outcome.result != .skipped else { return }
        metrics.batchFinished(outcome)
        ledger.count(outcome)
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
        await withCheckedContinuation { continuation in
            // Checked inside the body, never before it (docs/DECISIONS.md).
            if ledger.isSettled(id) {
                continuation.resume()
            } else {
                settlementWaiters[id] = continuation
            }
        }
    }

    // MARK: Logging

    func runLogger(_ run: SyncRun) -> Logger {
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
