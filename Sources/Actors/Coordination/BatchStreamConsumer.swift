public import ChatRuntime
import Foundation
public import Logging
public import Metrics
public import ServiceLifecycle

/// This instance's reader of the shared batch stream: reads batches for the ``Batcher`` while it
/// has room, claims batches other instances left pending too long, and, once a batch is
/// processed, acknowledges it and books its outcome on its run in one script
/// (``SharedRuns/settle(_:at:)``, several outcomes in one pipeline). What it holds and when it reads is decided by the pure
/// ``BatchConsumerState``; this actor carries the actions out and turns their results into events.
///
/// Driven by events, not timers: a batch finished (room), a read that filled its count (more to
/// read), the next append of any instance (a blocking read on a connection of its own), Redis
/// ready again. Timed work is only what nothing can signal: claiming the batches of a dead
/// instance (every `claimInterval`), and polling when no connection of its own can be had.
///
/// At least once, nothing lost: a batch is acknowledged only after its Redis write (or its keeping
/// for write-back); an outcome that cannot be booked (Redis away) is kept and booked when Redis is
/// back; a batch not processed (shutdown) is left pending for another instance to claim.
///
/// A `Service`, started after the batcher and stopped before it: on graceful shutdown it stops
/// reading, waits (within `shutdownGracePeriod`) until what it holds is settled, then returns.
public actor BatchStreamConsumer: Service {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let supervisor: RedisSupervisor
    private let loop: EventLoop
    private let stream: BatchStream
    private let blocking: BlockingStreamReader
    private let runs: SharedRuns
    private let batcher: Batcher
    private let clock: any SyncClock
    private let settings: CoordinationSettings
    private let shutdownGracePeriod: Duration
    private let metrics: SyncMetrics
    private let logger: Logger

    private var state: BatchConsumerState
    private var unbooked: [BatchOutcome] = []
    private var claimCursor = "0-0"
    private var currentFence: Int64 = 0
    private var counters = CoordinationStatus.Consumer(
        held: 0, holdLimit: 0, unsettled: 0, batchesRead: 0, batchesClaimed: 0, batchesFromOldLeaders: 0,
        batchesSettled: 0, batchesDuplicate: 0, batchesLost: 0, entriesRejected: 0)
    private var totals = SyncStatus.Totals()
    private var started = false
    /// Fired for every batch this instance books (``nextSettlement(orAfter:)``).
    private let settled = Pulse()

    /// What the actor's loop reacts to: the state machine's events, with the payloads only the
    /// actor needs.
    private enum Input: Sendable {
        case event(BatchConsumerState.Event)
        case read(Result<BatchStream.Read, any Error>, asked: Int)
        case blockingRead(Result<BatchStream.Read, any Error>)
        case claim(Result<StreamReplies.Claim, any Error>)
        case outcome(BatchOutcome)
        case booked(Result<[SharedRuns.Settlement], any Error>)
    }

    private let inputs: AsyncStream<Input>
    private let input: AsyncStream<Input>.Continuation

    /// The hold limit is `settings.holdLimit`, or twice the batcher's concurrency limit, following
    /// it as it adapts.
    ///
    /// - Parameters:
    ///   - errorLimit: error lines kept per run.
    ///   - shutdownGracePeriod: how long, after shutdown began, the batches in hand may take.
    public init(
        supervisor: RedisSupervisor, loop: EventLoop, settings: CoordinationSettings, errorLimit: Int,
        batcher: Batcher, clock: any SyncClock, shutdownGracePeriod: Duration,
        metricsFactory: any MetricsFactory = MetricsSystem.factory, logger: Logger
    ) {
        unownedExecutor = loop.asUnownedSerialExecutor()
        self.supervisor = supervisor
        self.loop = loop
        self.settings = settings
        stream = BatchStream(supervisor: supervisor, settings: settings)
        blocking = BlockingStreamReader(supervisor: supervisor, loop: loop, settings: settings, logger: logger)
        runs = SharedRuns(supervisor: supervisor, settings: settings, errorLimit: errorLimit)
        self.batcher = batcher
        self.clock = clock
        self.shutdownGracePeriod = shutdownGracePeriod
        metrics = SyncMetrics(factory: metricsFactory)
        self.logger = logger
        state = BatchConsumerState(holdLimit: settings.holdLimit ?? max(1, 2 * batcher.limit))
        (inputs, input) = AsyncStream.makeStream(of: Input.self)
    }

    /// How often the pending entries list is scanned for batches to claim.
    private var claimInterval: Duration { min(settings.claimMinIdle / 2, .seconds(5)) }

    var status: CoordinationStatus.Consumer {
        var status = counters
        status.held = state.held
        status.holdLimit = state.holdLimit
        status.unsettled = unbooked.count
        return status
    }

    /// This instance's batches and the runs whose end it booked, since start-up.
    var batchTotals: SyncStatus.Totals { totals }

    /// Returns when this instance books its next batch, or after `fallback` (other instances'
    /// settlements signal nothing here), or when the caller is cancelled.
    nonisolated func nextSettlement(orAfter fallback: Duration) async {
        let settled = settled
        await withTaskGroup(of: Void.self) { group in
            // Timed: another instance settling a batch signals nothing here.
            group.addTask(executorPreference: loop) { try? await Task.sleep(for: fallback) }
            group.addTask(executorPreference: loop) { await settled.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    // MARK: Service

    public func run() async {
        precondition(!started, "BatchStreamConsumer.run may only be called once")
        started = true
        let input = input
        let batcher = batcher
        let changes = await supervisor.stateChanges()
        let claimInterval = claimInterval
        let grace = shutdownGracePeriod
        // Discarding: every read and poll is a child task, freed when it ends; a plain group would
        // keep each finished one until shutdown, since nothing here reaps results.
        await withDiscardingTaskGroup { group in
            group.addTask(executorPreference: loop) {
                for await outcome in batcher.outcomes { input.yield(.outcome(outcome)) }
            }
            group.addTask(executorPreference: loop) {
                for await change in changes {
                    input.yield(.event(change.to == .ready ? .redisReady : .redisLost))
                }
            }
            group.addTask(executorPreference: loop) {
                // Polled: a dead instance cannot say that it died.
                while !Task.isCancelled {
                    do { try await Task.sleep(for: claimInterval) } catch { return }
                    input.yield(.event(.claimDue))
                }
            }
            group.addTask(executorPreference: loop) {
                do { try await gracefulShutdown() } catch { return }
                input.yield(.event(.shutdown))
                // Timed: the grace period is a deadline, not something anyone signals.
                do { try await Task.sleep(for: grace) } catch { return }
                input.yield(.event(.graceExpired))
            }
            if await supervisor.state == .ready { input.yield(.event(.redisReady)) }
            loop: for await next in inputs {
                for action in await react(to: next) {
                    if action == .finish { break loop }
                    perform(action, in: &group)
                }
            }
            // A blocked read would hold the group for its block time: its connection goes first.
            await blocking.close()
            group.cancelAll()
        }
        settled.fire()
    }

    // MARK: Events

    private func react(to next: Input) async -> [BatchConsumerState.Action] {
        switch next {
        case .event(let event):
            return state.handle(event)
        case .read(.success(let read), let asked):
            currentFence = max(currentFence, read.fence)
            if read.noGroup { return state.handle(.noGroup) }
            metrics.batchesRead(read.entries.count, claimed: false)
            let held = await deliver(read.entries, claimed: false)
            return state.handle(.readCompleted(entries: read.entries.count, held: held, asked: asked))
        case .read(.failure(let error), _):
            logger.debug("reading the batch stream failed", metadata: ["error": "\(error)"])
            return state.handle(.readFailed)
        case .blockingRead(.success(let read)):
            currentFence = max(currentFence, read.fence)
            if read.noGroup { return state.handle(.blockingReadUnavailable) }
            metrics.batchesRead(read.entries.count, claimed: false)
            let held = await deliver(read.entries, claimed: false)
            return state.handle(.blockingReadCompleted(entries: read.entries.count, held: held))
        case .blockingRead(.failure(let error)):
            logger.debug(
                "blocking read of the batch stream failed; polling until redis is ready again",
                metadata: [
                    "error": "\(error)"
                ])
            return state.handle(.blockingReadUnavailable)
        case .claim(.success(let claim)):
            claimCursor = claim.cursor
            noteLost(claim.deleted)
            if !claim.entries.isEmpty {
                logger.notice(
                    "claimed batches another instance left pending", metadata: ["sync.count": "\(claim.entries.count)"])
            }
            metrics.batchesRead(claim.entries.count, claimed: true)
            let held = await deliver(claim.entries, claimed: true)
            return state.handle(.claimCompleted(held: held, more: claim.cursor != "0-0"))
        case .claim(.failure(let error)):
            logger.debug("claiming pending batches failed", metadata: ["error": "\(error)"])
            return state.handle(.claimFailed)
        case .outcome(let outcome):
            var actions: [BatchConsumerState.Action] = []
            let limit = settings.holdLimit ?? max(1, 2 * batcher.limit)
            if limit != state.holdLimit { actions += state.handle(.holdLimitChanged(limit)) }
            count(outcome)
            // Not processed (shutdown): left pending for another instance to claim.
            let needsBooking = outcome.result != .skipped && outcome.delivery != nil
            if needsBooking { unbooked.append(outcome) }
            return actions + state.handle(.outcome(needsBooking: needsBooking))
        case .booked(.success(let settlements)):
            let outcomes = unbooked.prefix(settlements.count)
            unbooked.removeFirst(settlements.count)
            for (outcome, settlement) in zip(outcomes, settlements) { await noteSettled(outcome, settlement) }
            settled.fire()
            return state.handle(.booked(count: settlements.count))
        case .booked(.failure):
            return state.handle(.bookingFailed)
        }
    }

    private func perform(_ action: BatchConsumerState.Action, in group: inout DiscardingTaskGroup) {
        let input = input
        let stream = stream
        let loop = loop
        switch action {
        case .ensureGroup:
            group.addTask(executorPreference: loop) {
                do {
                    try await stream.ensureGroup()
                    input.yield(.event(.groupEnsured))
                } catch {
                    input.yield(.event(.groupFailed))
                }
            }
        case .read(let count):
            group.addTask(executorPreference: loop) {
                let result: Result<BatchStream.Read, any Error>
                do { result = .success(try await stream.read(count: count)) } catch { result = .failure(error) }
                input.yield(.read(result, asked: count))
            }
        case .blockingRead(let count):
            let blocking = blocking
            group.addTask(executorPreference: loop) {
                let result: Result<BatchStream.Read, any Error>
                do { result = .success(try await blocking.read(count: count)) } catch { result = .failure(error) }
                input.yield(.blockingRead(result))
            }
        case .cancelBlockingRead:
            let blocking = blocking
            group.addTask(executorPreference: loop) { await blocking.close() }
        case .pollLater:
            let interval = settings.pollInterval
            group.addTask(executorPreference: loop) {
                // Polled: without a connection of its own nothing signals an append.
                do { try await Task.sleep(for: interval) } catch { return }
                input.yield(.event(.pollDue))
            }
        case .claim(let count):
            let cursor = claimCursor
            group.addTask(executorPreference: loop) {
                let result: Result<StreamReplies.Claim, any Error>
                do { result = .success(try await stream.claim(count: count, cursor: cursor)) } catch {
                    result = .failure(error)
                }
                input.yield(.claim(result))
            }
        case .book(let count):
            let outcomes = Array(unbooked.prefix(count))
            guard outcomes.count == count else {
                assertionFailure("booking more outcomes than kept")
                return
            }
            let runs = runs
            let now = clock.now()
            group.addTask(executorPreference: loop) {
                let result: Result<[SharedRuns.Settlement], any Error>
                do { result = .success(try await runs.settle(outcomes, at: now)) } catch { result = .failure(error) }
                input.yield(.booked(result))
            }
        case .finish:
            break
        }
    }

    // MARK: Batches

    /// Hands the batches among `entries` to the batcher; returns how many it took.
    private func deliver(_ entries: [StreamEntry], claimed: Bool) async -> Int {
        var held = 0
        for entry in entries {
            guard let batch = BatchStream.batch(from: entry, claimed: claimed), let delivery = batch.delivery else {
                counters.entriesRejected += 1
                logger.error(
                    "stream entry is not a batch; acknowledged and dropped", metadata: ["sync.entry": "\(entry.id)"])
                try? await stream.acknowledge(entry.id)
                continue
            }
            if claimed { counters.batchesClaimed += 1 } else { counters.batchesRead += 1 }
            if delivery.fence < currentFence {
                // Kept: refreshing chats is idempotent, and the batch may be all that is left of a
                // run the old leader listed before it died.
                counters.batchesFromOldLeaders += 1
                metrics.batchFromOldLeader()
                logger.notice(
                    "batch from an earlier leader; processed anyway",
                    metadata: [
                        "sync.run_id": "\(batch.runID)", "sync.batch": "\(batch.number)",
                        "sync.fence": "\(delivery.fence)", "sync.current_fence": "\(currentFence)",
                    ])
            }
            // Refused only once the batcher stopped: the entry stays pending for another instance.
            if batcher.submit(batch) { held += 1 }
        }
        return held
    }

    private func noteLost(_ deleted: [String]) {
        guard !deleted.isEmpty else { return }
        counters.batchesLost += deleted.count
        metrics.batchesLost(deleted.count)
        logger.error(
            "pending batches were trimmed from the stream before anyone processed them",
            metadata: [
                "sync.entries": "\(deleted.prefix(10).joined(separator: ","))", "sync.count": "\(deleted.count)",
            ])
    }

    private func count(_ outcome: BatchOutcome) {
        guard outcome.result != .skipped else { return }
        metrics.batchFinished(outcome)
        totals.chatsRefreshed += outcome.chatsRefreshed
        totals.chatsNotFound += outcome.chatsNotFound
        totals.chatsFailed += outcome.chatsFailed
        switch outcome.result {
        case .written: totals.batchesDone += 1
        case .deferred:
            totals.batchesDone += 1
            totals.batchesDeferred += 1
        case .failed: totals.batchesFailed += 1
        case .skipped: totals.batchesSkipped += 1
        }
    }

    private func noteSettled(_ outcome: BatchOutcome, _ settlement: SharedRuns.Settlement) async {
        switch settlement {
        case .counted(let runState):
            counters.batchesSettled += 1
            if runState != .running && runState != .queued { await runEnded(outcome.runID) }
        case .duplicate:
            counters.batchesDuplicate += 1
            metrics.batchDuplicate()
        case .unknownRun:
            logger.warning(
                "batch of a run without a record; acknowledged", metadata: ["sync.run_id": "\(outcome.runID)"])
        }
    }

    /// This instance booked a run's last word (its last batch, or, for the producer, the final
    /// append of a run whose batches were all back): the run's end is logged and counted here.
    func runEnded(_ id: RunID) async {
        guard let run = try? await runs.run(id) else { return }
        metrics.runFinished(run)
        switch run.state {
        case .completed: totals.runsCompleted += 1
        case .failed: totals.runsFailed += 1
        case .cancelled: totals.runsCancelled += 1
        case .queued, .running: break
        }
        var logger = logger
        logger[metadataKey: "sync.run_id"] = "\(run.id)"
        logger[metadataKey: "sync.kind"] = "\(run.kind.rawValue)"
        let metadata: Logger.Metadata = [
            "sync.state": "\(run.state.rawValue)", "sync.chats_refreshed": "\(run.counts.chatsRefreshed)",
            "sync.chats_failed": "\(run.counts.chatsFailed)", "sync.batches_planned": "\(run.counts.batchesPlanned)",
            "sync.fence": "\(run.fence ?? 0)", "sync.adoptions": "\(run.adoptions ?? 0)",
        ]
        if run.state == .completed {
            logger.info("sync run ended", metadata: metadata)
        } else {
            logger.warning("sync run ended", metadata: metadata)
        }
    }
}
