import ChatRuntime
import Foundation
public import Logging
public import Metrics
public import ServiceLifecycle

/// Plans the background sync (DESIGN §2) for every instance that shares a Redis: interval runs
/// over the tracked chats, the daily full run over every chat upstream lists, manual full runs,
/// and a catch-up run when Redis comes back (docs/COORDINATION.md). A single instance is a
/// cluster of one: there is no other mode.
///
/// Every instance keeps the schedule and records requests; only the leader (``LeaderElector``)
/// claims ticks and produces runs: it lists or selects the chats and appends their batches to
/// the shared stream with fenced scripts (``SharedRuns``). Every instance's
/// ``BatchStreamConsumer`` reads the stream into its ``Batcher``. Runs live in Redis, so any
/// instance shows them, and a run whose leader stops is carried on by the next one.
///
/// One run of each kind at a time, cluster-wide (decided in the create script): a full request
/// while a full run is going joins it, an interval tick while a full or interval run is going is
/// skipped, a catch-up request joins a going interval or catch-up run.
///
/// A `Service` on the event loop, started after the elector, the batcher and the consumer, so it
/// stops first: graceful shutdown stops the schedule and the producers at once (the next leader
/// carries their runs on); the consumer then settles the batches in hand, and the elector
/// releases the lock last.
public actor Scheduler: Service {
    enum Lifecycle: String {
        case idle, running, stopping, stopped
    }

    enum PageRead {
        case page(ChatListPage)
        case failed(String)
        case cancelled
    }

    /// A shared run this instance, as leader, took over, to produce.
    struct Launch: Sendable {
        var record: SharedRunRecord
        var lease: LeaderLease
        var previousFence: Int64
    }

    public nonisolated let unownedExecutor: UnownedSerialExecutor
    /// The loop it runs on; its child tasks prefer it too, so nonisolated calls (the consumer's
    /// settlement wait) do not hop through the global pool.
    let loop: EventLoop
    // Internal rather than private: the Scheduler+… extensions use them.
    let settings: Settings
    let coordinationSettings: CoordinationSettings
    let upstream: any ParticipantsUpstream
    let store: any ParticipantsStore
    let clock: any SyncClock
    let redisStateChanges: AsyncStream<RedisStateChange>?
    let elector: LeaderElector
    let runs: SharedRuns
    let stream: BatchStream
    let consumer: BatchStreamConsumer
    let batcher: Batcher
    let logger: Logger
    let metrics: SyncMetrics
    let schedule: DailySchedule
    var random: ErasedRandom
    var lifecycle = Lifecycle.idle
    let launches: AsyncStream<Launch>
    let launchContinuation: AsyncStream<Launch>.Continuation
    var nextIntervalRunAt: Date?
    var nextFullRunAt: Date?
    var shared = SharedState()
    /// Runs this instance started (recorded in Redis), for the totals.
    var runsStarted = 0

    /// - Parameters:
    ///   - clock: the wall clock runs are planned by; tests pass a ``ManualSyncClock``.
    ///   - redisStateChanges: the supervisor's state changes (`RedisSupervisor.stateChanges()`);
    ///     a change to `ready` from `reconnecting` or `unavailable` starts a catch-up run. The
    ///     first connection (`connecting` → `ready`) does not.
    ///   - coordination: the Redis the runs are shared through, and how.
    ///   - elector, consumer, batcher: the other services of the pipeline (built beside it).
    ///   - random: jitter and run-id suffixes; tests pass a ``SeededRandom``.
    ///   - metricsFactory: where the `sync_*` metrics go.
    public init(
        settings: Settings,
        upstream: any ParticipantsUpstream,
        store: any ParticipantsStore,
        clock: any SyncClock = SystemSyncClock(),
        redisStateChanges: AsyncStream<RedisStateChange>? = nil,
        coordination: SyncCoordination,
        elector: LeaderElector,
        consumer: BatchStreamConsumer,
        batcher: Batcher,
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) {
        settings.validate()
        unownedExecutor = coordination.loop.asUnownedSerialExecutor()
        loop = coordination.loop
        self.settings = settings
        coordinationSettings = coordination.settings
        self.upstream = upstream
        self.store = store
        self.clock = clock
        self.redisStateChanges = redisStateChanges
        self.elector = elector
        runs = SharedRuns(
            supervisor: coordination.supervisor, settings: coordination.settings, errorLimit: settings.errorLimit)
        stream = BatchStream(supervisor: coordination.supervisor, settings: coordination.settings)
        self.consumer = consumer
        self.batcher = batcher
        self.random = ErasedRandom(base: random)
        self.logger = logger
        metrics = SyncMetrics(factory: metricsFactory)
        schedule = DailySchedule(hour: settings.fullUpdateHour, timeZone: settings.timeZone)
        (launches, launchContinuation) = AsyncStream.makeStream(of: Launch.self)
    }

    // MARK: Service

    public func run() async throws {
        precondition(lifecycle == .idle, "Scheduler.run may only be called once")
        lifecycle = .running
        logger.info(
            "scheduler started",
            metadata: [
                "sync.update_interval": "\(settings.updateInterval)",
                "sync.full_update_hour": "\(settings.fullUpdateHour)",
                "sync.time_zone": "\(settings.timeZone.identifier)",
                "sync.batch_size": "\(settings.batchSize)",
                "sync.max_batches_in_flight": "\(settings.maxBatchesInFlight)",
            ])
        await produceUntilShutdown()
        lifecycle = .stopped
        logger.info("scheduler stopped")
    }

    // MARK: Requests

    /// Starts a manual full run, or joins the full run already going; returns the run's id.
    ///
    /// The run is recorded in Redis (or joins the full run going there) and the leader, whichever
    /// instance it is, produces it; while Redis is away the request is kept here and handed over
    /// when it is back.
    @discardableResult
    public func requestFullRun(trigger: String) async -> RunID {
        await requestSharedFullRun(trigger: trigger)
    }

    /// Asks for a catch-up run (interval-style, now): the leader claims it like a tick, so
    /// instances that all saw Redis come back start one between them.
    public func requestCatchUpRun(trigger: String = "redis_ready") async {
        shared.pendingTicks[.catchUp] = clock.now()
        await claimPendingTicks()
    }

    /// Runs going, recent runs (the cluster's, from Redis), this instance's totals, the schedule,
    /// the batcher's load and the coordination (leader, fence, stream).
    public func status() async -> SyncStatus {
        let load = batcher.load
        let view = await sharedStatus()
        var totals = await consumer.batchTotals
        totals.runsStarted = runsStarted
        return SyncStatus(
            state: lifecycle.rawValue,
            running: view.running,
            recent: view.recent,
            totals: totals,
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
                concurrencyLimit: load.limit, maxInFlight: settings.maxBatchesInFlight,
                batchSize: settings.batchSize),
            coordination: view.coordination)
    }

    /// The run `id`, going or among the recent ones, as recorded in Redis.
    public func run(_ id: RunID) async -> SyncRun? {
        await sharedRun(id)
    }

    // MARK: Logging

    func runLogger(_ run: SyncRun) -> Logger {
        var logger = logger
        logger[metadataKey: "sync.run_id"] = "\(run.id)"
        logger[metadataKey: "sync.kind"] = "\(run.kind.rawValue)"
        return logger
    }
}
