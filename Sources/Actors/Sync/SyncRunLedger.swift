import Foundation

/// The books of the scheduler's runs: which are going, which ended recently, totals since
/// start-up, and which request may start a run. A value type without I/O, unit-tested on its own.
struct SyncRunLedger {
    /// What to do with a request for a run.
    enum Admission: Hashable {
        /// Start a new run.
        case start
        /// A run that covers the request is going; the request joins it.
        case join(RunID)
        /// A run that makes the request pointless is going; nothing starts.
        case skip(coveredBy: RunID)
    }

    /// Runs going, oldest first.
    private(set) var running: [SyncRun] = []
    /// Runs ended, newest first, at most `historyLimit`.
    private(set) var recent: [SyncRun] = []
    private(set) var totals = SyncStatus.Totals()
    /// Runs whose producer has handed over its last batch.
    private var producersDone: Set<RunID> = []
    let historyLimit: Int
    let errorLimit: Int

    init(historyLimit: Int, errorLimit: Int) {
        self.historyLimit = historyLimit
        self.errorLimit = errorLimit
    }

    /// One run of each kind at a time. A full request joins a going full run (scheduled or
    /// manual); an interval tick is skipped while any run that covers the tracked chats is going
    /// (a full run or an interval-style run); a catch-up joins a going interval-style run but does
    /// run beside a full run, which may take hours to reach the chats that went stale.
    func admission(for kind: SyncRun.Kind) -> Admission {
        let full = running.first { $0.kind.isFull }
        let intervalStyle = running.first { !$0.kind.isFull }
        switch kind {
        case .full, .manualFull:
            return full.map { .join($0.id) } ?? .start
        case .interval:
            if let covering = full ?? intervalStyle { return .skip(coveredBy: covering.id) }
            return .start
        case .catchUp:
            return intervalStyle.map { .join($0.id) } ?? .start
        }
    }

    func run(_ id: RunID) -> SyncRun? {
        running.first { $0.id == id } ?? recent.first { $0.id == id }
    }

    func isRunning(_ id: RunID) -> Bool {
        running.contains { $0.id == id }
    }

    mutating func begin(_ run: SyncRun) {
        precondition(!isRunning(run.id), "run \(run.id) begun twice")
        running.append(run)
        totals.runsStarted += 1
    }

    /// Changes a going run; ignored for runs that ended.
    mutating func update(_ id: RunID, _ change: (inout SyncRun) -> Void) {
        guard let index = running.firstIndex(where: { $0.id == id }) else { return }
        change(&running[index])
    }

    mutating func recordError(_ id: RunID, _ message: String, at date: Date) {
        let limit = errorLimit
        update(id) { $0.recordError(message, at: date, limit: limit) }
    }

    /// Books a batch's outcome on its run; returns the run as it now is, or nil when the run is
    /// not going (it cannot have ended with batches outstanding, so that is a bug upstream of here).
    mutating func apply(_ outcome: BatchOutcome, at date: Date) -> SyncRun? {
        guard let index = running.firstIndex(where: { $0.id == outcome.runID }) else { return nil }
        var run = running[index]
        run.counts.chatsRefreshed += outcome.chatsRefreshed
        run.counts.chatsNotFound += outcome.chatsNotFound
        run.counts.chatsFailed += outcome.chatsFailed
        run.counts.chatsSkipped += outcome.chatsSkipped
        count(outcome)
        switch outcome.result {
        case .written:
            run.counts.batchesDone += 1
        case .deferred:
            run.counts.batchesDone += 1
            run.counts.batchesDeferred += 1
        case .failed:
            run.counts.batchesFailed += 1
        case .skipped:
            run.counts.batchesSkipped += 1
        }
        for message in outcome.errors {
            run.recordError(message, at: date, limit: errorLimit)
        }
        running[index] = run
        return run
    }

    /// Adds a batch's outcome to the totals only: a batch of a shared run, whose books are in
    /// Redis.
    mutating func count(_ outcome: BatchOutcome) {
        totals.chatsRefreshed += outcome.chatsRefreshed
        totals.chatsNotFound += outcome.chatsNotFound
        totals.chatsFailed += outcome.chatsFailed
        switch outcome.result {
        case .written:
            totals.batchesDone += 1
        case .deferred:
            totals.batchesDone += 1
            totals.batchesDeferred += 1
        case .failed:
            totals.batchesFailed += 1
        case .skipped:
            totals.batchesSkipped += 1
        }
    }

    /// Counts a run started elsewhere than in this ledger (a shared run this instance recorded).
    mutating func countRunStarted() {
        totals.runsStarted += 1
    }

    mutating func producerFinished(_ id: RunID) {
        producersDone.insert(id)
    }

    /// Whether the run's producer is done and every batch it handed over has been accounted for.
    func isSettled(_ id: RunID) -> Bool {
        guard producersDone.contains(id), let run = running.first(where: { $0.id == id }) else { return false }
        return run.counts.batchesSettled >= run.counts.batchesPlanned
    }

    /// Ends a going run in `state`; returns it as ended.
    @discardableResult
    mutating func finish(_ id: RunID, state: SyncRun.State, failure: String? = nil, at date: Date) -> SyncRun? {
        precondition(state != .running && state != .queued, "a run ends completed, failed or cancelled")
        guard let index = running.firstIndex(where: { $0.id == id }) else { return nil }
        var run = running.remove(at: index)
        producersDone.remove(id)
        run.state = state
        run.failure = failure
        run.finishedAt = date
        switch state {
        case .completed: totals.runsCompleted += 1
        case .failed: totals.runsFailed += 1
        case .cancelled: totals.runsCancelled += 1
        case .running, .queued: break
        }
        recent.insert(run, at: 0)
        if recent.count > historyLimit { recent.removeLast(recent.count - historyLimit) }
        return run
    }
}
