/// A shared run's books, as the pure model of what the coordination scripts keep in its Redis hash
/// (docs/COORDINATION.md): batches planned (appended to the stream), settled (done, failed or
/// skipped, booked once each), those left in the stream (planned and not settled: the backlog),
/// and whether the producer is done and how it ended. ``handle(_:)`` is its one transition
/// function; the scripts (``CoordinationScripts``) do the same atomically in Redis, and
/// `SharedRunBooksScriptTests` drives both with the same events to show they agree.
///
/// The producer also asks it whether there is room to append (``mustWaitForRoom(backlogLimit:streamLength:streamLengthLimit:)``).
struct SharedRunBooks: Sendable, Hashable {
    enum ProducerEnd: String, Sendable, Hashable {
        /// Every batch appended.
        case finished
        /// Listing failed: the run fails once its batches are back.
        case failed
        /// Given up by a new leader that cannot resume it (interval-style runs).
        case interrupted
    }

    enum Event: Sendable, Hashable {
        /// `count` batches appended (planned).
        case appended(count: Int)
        /// One batch booked with this result (written and deferred count as done).
        case settled(BatchOutcome.Result)
        /// The producer is done.
        case producerEnded(ProducerEnd)
        /// The leader failed the run: its producer finished long ago and batches never came back.
        case reaped
    }

    enum Action: Sendable, Hashable {
        /// The run ended in this state: clear its active slot, log and count it.
        case ended(SyncRun.State)
    }

    private(set) var state = SyncRun.State.running
    private(set) var planned = 0
    private(set) var done = 0
    private(set) var failed = 0
    private(set) var skipped = 0
    private(set) var producerEnd: ProducerEnd?
    private(set) var failure: String?

    /// Planned and not yet settled: the batches left in the stream (read or not).
    var backlog: Int { planned - done - failed - skipped }

    var isEnded: Bool { state != .running && state != .queued }

    mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case .appended(let count):
            guard !isEnded else { return impossible("appended to an ended run") }
            guard producerEnd == nil else { return impossible("appended after the producer ended") }
            planned += count
            return []
        case .settled(let result):
            // A batch settled after its run ended (a straggler claimed from a slow instance) is
            // counted: the run's books stay whole.
            guard backlog > 0 else { return impossible("settled more batches than planned") }
            switch result {
            case .written, .deferred: done += 1
            case .failed: failed += 1
            case .skipped: skipped += 1
            }
            return endIfSettled()
        case .producerEnded(let end):
            guard !isEnded else { return [] }
            guard producerEnd == nil else { return impossible("the producer ended twice") }
            producerEnd = end
            return endIfSettled()
        case .reaped:
            guard !isEnded else { return [] }
            guard producerEnd != nil else { return impossible("reaped a run still producing") }
            state = .failed
            failure = "\(backlog) batches were never accounted for"
            return [.ended(.failed)]
        }
    }

    /// The end rule (`settle_run` in the scripts): once the producer is done and every planned
    /// batch is settled, the run ends failed when listing failed or every batch failed, cancelled
    /// when interrupted or any batch was skipped, completed otherwise.
    private mutating func endIfSettled() -> [Action] {
        guard !isEnded, let producerEnd, backlog == 0 else { return [] }
        if producerEnd == .failed {
            state = .failed
        } else if producerEnd == .interrupted || skipped > 0 {
            state = .cancelled
        } else if planned > 0 && failed == planned {
            state = .failed
            failure = "every batch failed upstream"
        } else {
            state = .completed
        }
        return [.ended(state)]
    }

    /// Whether the producer must wait before appending more: the run's backlog is at its limit
    /// (the instances do not keep up), or the stream is half full (it is trimmed only up to its
    /// oldest unprocessed entry, so a batch a dead instance left pending holds it until claimed,
    /// and the `MAXLEN` cap must never be what removes an unprocessed batch).
    static func mustWaitForRoom(backlog: Int, backlogLimit: Int, streamLength: Int, streamLengthLimit: Int) -> Bool {
        backlog >= backlogLimit || streamLength >= streamLengthLimit
    }

    private func impossible(_ message: String) -> [Action] {
        assertionFailure("SharedRunBooks: \(message)")
        return []
    }
}
