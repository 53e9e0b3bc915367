import Foundation
import Logging
import Runtime

/// This instance's reader of the shared batch stream: polls the consumer group (never with
/// `BLOCK`), claims batches other instances left pending too long, hands each batch to the
/// ``Batcher`` and, once it is processed, acknowledges it and books its outcome on its run in
/// one script (``SharedRuns/settle(_:delivery:at:)``).
///
/// Holds at most `holdLimit` batches (read, not yet acknowledged), so a batch waits little
/// before processing and a dead instance leaves little to claim. An outcome that cannot be
/// booked (Redis away) is kept and booked when Redis is back; a batch not processed (shutdown)
/// is left pending for another instance to claim. At least once, nothing lost: a batch is
/// acknowledged only after its Redis write (or its keeping for write-back).
actor BatchStreamConsumer {
    nonisolated let unownedExecutor: UnownedSerialExecutor
    private let supervisor: RedisSupervisor
    private let stream: BatchStream
    private let runs: SharedRuns
    private let batcher: Batcher
    private let clock: any SyncClock
    private let settings: CoordinationSettings
    let holdLimit: Int
    private let metrics: SyncMetrics
    private let logger: Logger

    private var held = 0
    private var unsettled: [BatchOutcome] = []
    private var groupReady = false
    private var claimCursor = "0-0"
    private var nextClaimAt = ContinuousClock.now
    private var currentFence: Int64 = 0
    private var counters = CoordinationStatus.Consumer(
        held: 0, holdLimit: 0, unsettled: 0, batchesRead: 0, batchesClaimed: 0, batchesFromOldLeaders: 0,
        batchesSettled: 0, batchesDuplicate: 0, batchesLost: 0, entriesRejected: 0)

    init(
        supervisor: RedisSupervisor, loop: EventLoop, runs: SharedRuns, batcher: Batcher, clock: any SyncClock,
        holdLimit: Int, metrics: SyncMetrics, logger: Logger
    ) {
        unownedExecutor = loop.asUnownedSerialExecutor()
        self.supervisor = supervisor
        self.stream = BatchStream(supervisor: supervisor, settings: runs.settings)
        self.runs = runs
        self.batcher = batcher
        self.clock = clock
        self.settings = runs.settings
        self.holdLimit = holdLimit
        self.metrics = metrics
        self.logger = logger
    }

    /// How often the pending entries list is scanned for batches to claim.
    private var claimInterval: Duration { min(settings.claimMinIdle / 2, .seconds(5)) }

    var status: CoordinationStatus.Consumer {
        var status = counters
        status.held = held
        status.holdLimit = holdLimit
        status.unsettled = unsettled.count
        return status
    }

    /// Polls until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            await settleKept()
            let outcome = await poll()
            let nap: Duration = switch outcome {
            case .delivered: .zero
            case .full: .milliseconds(10)
            case .idle: settings.pollInterval
            }
            if nap > .zero { try? await Task.sleep(for: nap) }
        }
    }

    private enum PollOutcome {
        case delivered, full, idle
    }

    private func poll() async -> PollOutcome {
        guard await supervisor.state == .ready else {
            groupReady = false
            return .idle
        }
        if !groupReady {
            do {
                try await stream.ensureGroup()
                groupReady = true
            } catch {
                logger.debug("creating the consumer group failed", metadata: ["error": "\(error)"])
                return .idle
            }
        }
        var room = holdLimit - held
        guard room > 0 else { return .full }
        var delivered = 0
        do {
            if ContinuousClock.now >= nextClaimAt {
                let claim = try await stream.claim(count: room, cursor: claimCursor)
                claimCursor = claim.cursor
                if claim.cursor == "0-0" { nextClaimAt = ContinuousClock.now + claimInterval }
                if !claim.deleted.isEmpty {
                    counters.batchesLost += claim.deleted.count
                    metrics.batchesLost(claim.deleted.count)
                    logger.error("pending batches were trimmed from the stream before anyone processed them", metadata: [
                        "sync.entries": "\(claim.deleted.prefix(10).joined(separator: ","))",
                        "sync.count": "\(claim.deleted.count)",
                    ])
                }
                if !claim.entries.isEmpty {
                    logger.notice("claimed batches another instance left pending", metadata: [
                        "sync.count": "\(claim.entries.count)",
                    ])
                }
                metrics.batchesRead(claim.entries.count, claimed: true)
                for entry in claim.entries { await deliver(entry, claimed: true) }
                delivered += claim.entries.count
                room -= claim.entries.count
            }
            if room > 0 {
                let read = try await stream.read(count: room)
                currentFence = max(currentFence, read.fence)
                if read.noGroup {
                    groupReady = false
                } else {
                    metrics.batchesRead(read.entries.count, claimed: false)
                    for entry in read.entries { await deliver(entry, claimed: false) }
                    delivered += read.entries.count
                }
            }
        } catch {
            logger.debug("reading the batch stream failed", metadata: ["error": "\(error)"])
        }
        return delivered > 0 ? .delivered : .idle
    }

    private func deliver(_ entry: StreamEntry, claimed: Bool) async {
        guard let batch = BatchStream.batch(from: entry, claimed: claimed), let delivery = batch.delivery else {
            counters.entriesRejected += 1
            logger.error("stream entry is not a batch; acknowledged and dropped", metadata: ["sync.entry": "\(entry.id)"])
            try? await stream.acknowledge(entry.id)
            return
        }
        held += 1
        if claimed { counters.batchesClaimed += 1 } else { counters.batchesRead += 1 }
        if delivery.fence < currentFence {
            // Kept: refreshing chats is idempotent, and the batch may be all that is left of a
            // run the old leader listed before it died.
            counters.batchesFromOldLeaders += 1
            metrics.batchFromOldLeader()
            logger.notice("batch from an earlier leader; processed anyway", metadata: [
                "sync.run_id": "\(batch.runID)", "sync.batch": "\(batch.number)",
                "sync.fence": "\(delivery.fence)", "sync.current_fence": "\(currentFence)",
            ])
        }
        do {
            try await batcher.submit(batch)
        } catch {
            // Shutting down: the entry stays pending and another instance claims it.
            held -= 1
        }
    }

    /// Books a processed batch (called with the batcher's outcome).
    func settle(_ outcome: BatchOutcome) async {
        guard outcome.delivery != nil else { return }
        guard outcome.result != .skipped else {
            // Not processed (shutdown): left pending for another instance to claim.
            held -= 1
            return
        }
        if !unsettled.isEmpty {
            unsettled.append(outcome)
        } else if !(await book(outcome)) {
            unsettled.append(outcome)
        }
    }

    /// Books the outcomes kept while Redis was away, oldest first.
    func settleKept() async {
        while let first = unsettled.first {
            guard await book(first) else { return }
            unsettled.removeFirst()
        }
    }

    /// True when the outcome is booked (or was already, by another instance).
    private func book(_ outcome: BatchOutcome) async -> Bool {
        guard let delivery = outcome.delivery else { return true }
        let settlement: SharedRuns.Settlement
        do {
            settlement = try await runs.settle(outcome, delivery: delivery, at: clock.now())
        } catch {
            return false
        }
        held -= 1
        switch settlement {
        case .counted(let state):
            counters.batchesSettled += 1
            if state != .running && state != .queued { await runEnded(outcome.runID) }
        case .duplicate:
            counters.batchesDuplicate += 1
            metrics.batchDuplicate()
        case .unknownRun:
            logger.warning("batch of a run without a record; acknowledged", metadata: ["sync.run_id": "\(outcome.runID)"])
        }
        return true
    }

    /// This instance booked a run's last batch: the run's end is logged and counted here.
    private func runEnded(_ id: RunID) async {
        guard let run = try? await runs.run(id) else { return }
        metrics.runFinished(run)
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
