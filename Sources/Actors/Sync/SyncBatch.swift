/// Chats of one run to refresh together: one upstream batch call, one pipelined Redis write.
public struct SyncBatch: Sendable, Hashable {
    public var runID: RunID
    /// 1-based position within the run, for logs.
    public var number: Int
    /// At most PARTICIPANTS_BATCH_SIZE chats.
    public var chats: [ChatID]
    /// Set when the batch was read from the shared stream; nil for an in-process batch.
    public var delivery: StreamDelivery?

    public init(runID: RunID, number: Int, chats: [ChatID], delivery: StreamDelivery? = nil) {
        self.runID = runID
        self.number = number
        self.chats = chats
        self.delivery = delivery
    }
}

/// How a batch read from the shared stream `participants:v2:{sync}:batches` arrived.
public struct StreamDelivery: Sendable, Hashable {
    /// The stream entry id, acknowledged (`XACK`) once the batch's outcome is booked.
    public var entryID: String
    /// The fencing token of the leader that appended it.
    public var fence: Int64
    /// The kind of the batch's run.
    public var kind: SyncRun.Kind
    /// Taken over (`XAUTOCLAIM`) from an instance that did not acknowledge it in time.
    public var claimed: Bool

    public init(entryID: String, fence: Int64, kind: SyncRun.Kind, claimed: Bool) {
        self.entryID = entryID
        self.fence = fence
        self.kind = kind
        self.claimed = claimed
    }
}

/// What became of one batch, reported by the ``Batcher`` to the run's owner.
///
/// `chatsRefreshed + chatsNotFound + chatsFailed + chatsSkipped` equals the number of distinct
/// chats in the batch.
public struct BatchOutcome: Sendable, Hashable {
    public enum Result: String, Sendable, Hashable, CaseIterable {
        /// Upstream answered; the answer was written to Redis (or nothing needed writing).
        case written
        /// Upstream answered; Redis was not ready, so the answer waits in the write-back buffer.
        case deferred
        /// The upstream call failed; nothing was written, the cache keeps its last good data.
        case failed
        /// Not processed: shutdown came first.
        case skipped
    }

    public var runID: RunID
    public var batchNumber: Int
    public var result: Result
    public var chatsRefreshed: Int
    public var chatsNotFound: Int
    public var chatsFailed: Int
    public var chatsSkipped: Int
    /// What went wrong, for the run's error list; a few lines at most.
    public var errors: [String]
    /// The batch's stream delivery, when it came from the shared stream.
    public var delivery: StreamDelivery?

    public init(
        runID: RunID, batchNumber: Int, result: Result, chatsRefreshed: Int = 0, chatsNotFound: Int = 0,
        chatsFailed: Int = 0, chatsSkipped: Int = 0, errors: [String] = []
    ) {
        self.runID = runID
        self.batchNumber = batchNumber
        self.result = result
        self.chatsRefreshed = chatsRefreshed
        self.chatsNotFound = chatsNotFound
        self.chatsFailed = chatsFailed
        self.chatsSkipped = chatsSkipped
        self.errors = errors
    }

    /// The outcome of a batch that was never processed.
    public static func skipped(_ batch: SyncBatch) -> BatchOutcome {
        var outcome = BatchOutcome(
            runID: batch.runID, batchNumber: batch.number, result: .skipped,
            chatsSkipped: Set(batch.chats).count)
        outcome.delivery = batch.delivery
        return outcome
    }
}
