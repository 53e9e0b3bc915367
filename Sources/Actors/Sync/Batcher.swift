import Foundation
import Logging
import Synchronization

/// Refreshes batches of chats: per batch one upstream `batchGet` and one `storeBatch` (one
/// pipelined Redis write), with at most `maxBatchesInFlight` batches at once.
///
/// Producers hand batches over with ``submit(_:)``, which suspends while the bounded buffer is
/// full; the batcher takes a batch from the buffer only when it has a free slot, so at any time at
/// most `bufferCapacity + maxBatchesInFlight` batches are accepted but not finished. A slow
/// upstream or a Redis outage (the store waits when its write-back buffer is full) therefore slows
/// the producer instead of growing memory.
///
/// A failed upstream call is not retried here: the upstream client already retries each call
/// within PARTICIPANTS_MAX_API_TIMEOUT, and the chats stay stale, so the next interval run picks
/// the tracked ones up again. Every batch accepted is reported exactly once through `report`.
public actor Batcher {
    /// What the batcher is doing right now.
    public struct Load: Sendable, Hashable {
        /// Accepted and waiting for a slot.
        public var queued: Int
        /// Being fetched or stored.
        public var inFlight: Int
        /// The most batches ever in flight at once.
        public var peakInFlight: Int
    }

    /// Why ``submit(_:)`` refused a batch.
    public enum SubmitError: Error, Hashable {
        /// The batcher is shutting down.
        case closed
        /// The submitting task was cancelled while waiting for room.
        case cancelled
    }

    private let upstream: any ParticipantsUpstream
    private let store: any ParticipantsStore
    private let clock: any SyncClock
    private let maxBatchesInFlight: Int
    private let logger: Logger
    private let queue: BoundedQueue<SyncBatch>
    private let inFlight = Mutex((current: 0, peak: 0))
    private var started = false

    /// How many error lines one batch contributes to its run at most.
    static let errorLinesPerBatch = 5

    /// - Parameters:
    ///   - bufferCapacity: batches accepted ahead of processing (at least 1).
    ///   - maxBatchesInFlight: batches fetched or stored at once (at least 1).
    public init(
        upstream: any ParticipantsUpstream,
        store: any ParticipantsStore,
        clock: any SyncClock,
        bufferCapacity: Int,
        maxBatchesInFlight: Int,
        logger: Logger
    ) {
        precondition(maxBatchesInFlight >= 1, "the batcher needs at least one batch in flight")
        self.upstream = upstream
        self.store = store
        self.clock = clock
        self.maxBatchesInFlight = maxBatchesInFlight
        self.logger = logger
        self.queue = BoundedQueue(capacity: bufferCapacity)
    }

    /// Hands `batch` over, waiting while the buffer is full.
    public nonisolated func submit(_ batch: SyncBatch) async throws(SubmitError) {
        do {
            try await queue.send(batch)
        } catch {
            switch error {
            case .closed: throw .closed
            case .cancelled: throw .cancelled
            }
        }
    }

    /// Refuses further batches; ``run(report:)`` returns once the accepted ones are finished.
    public nonisolated func close() {
        queue.close()
    }

    public nonisolated var load: Load {
        let (current, peak) = inFlight.withLock { $0 }
        return Load(queued: queue.count, inFlight: current, peakInFlight: peak)
    }

    /// Processes batches until ``close()`` and the buffer is empty. When the calling task is
    /// cancelled, the batches in flight are cancelled (an upstream call interrupted that way counts
    /// as skipped, not failed) and the ones still queued are reported as skipped.
    public func run(report: @escaping @Sendable (BatchOutcome) async -> Void) async {
        precondition(!started, "Batcher.run may only be called once")
        started = true
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            while true {
                if running == maxBatchesInFlight {
                    await group.next()
                    running -= 1
                }
                guard let batch = await queue.receive() else { break }
                running += 1
                inFlight.withLock { load in
                    load.current += 1
                    load.peak = max(load.peak, load.current)
                }
                group.addTask {
                    let outcome = await self.process(batch)
                    self.inFlight.withLock { $0.current -= 1 }
                    await report(outcome)
                }
            }
            await group.waitForAll()
        }
        queue.close()
        for batch in queue.removeAll() {
            await report(.skipped(batch))
        }
    }

    /// One batch, end to end. Never throws: whatever happens is in the outcome, which carries
    /// the batch's stream delivery, if any.
    nonisolated func process(_ batch: SyncBatch) async -> BatchOutcome {
        var outcome = await refresh(batch)
        outcome.delivery = batch.delivery
        return outcome
    }

    private nonisolated func refresh(_ batch: SyncBatch) async -> BatchOutcome {
        var requested: [ChatID] = []
        var requestedSet: Set<ChatID> = []
        for chat in batch.chats where requestedSet.insert(chat).inserted { requested.append(chat) }
        let logger = batchLogger(batch)

        let response: BatchGetResponse
        do {
            response = try await upstream.batchGet(requested)
        } catch {
            if Task.isCancelled {
                return BatchOutcome(
                    runID: batch.runID, batchNumber: batch.number, result: .skipped, chatsSkipped: requested.count)
            }
            logger.warning("batch failed upstream", metadata: ["error": "\(error)"])
            return BatchOutcome(
                runID: batch.runID, batchNumber: batch.number, result: .failed, chatsFailed: requested.count,
                errors: ["batch \(batch.number) (\(requested.count) chats): \(error)"])
        }

        let answer = BatchAnswer(requested: requested, response: response)
        var errors: [String] = []
        for rejected in response.rejected {
            logger.warning("upstream sent a malformed chat", metadata: ["error": "\(rejected)"])
            errors.append("batch \(batch.number): \(rejected)")
        }
        if !answer.missing.isEmpty {
            let sample = answer.missing.prefix(10).map(\.rawValue).joined(separator: ", ")
            logger.warning(
                "upstream left chats out of its answer",
                metadata: ["sync.chats_missing": "\(answer.missing.count)", "sync.sample": "\(sample)"])
            errors.append("batch \(batch.number): \(answer.missing.count) chats missing from upstream's answer: \(sample)")
        }
        if answer.unexpected > 0 {
            logger.notice("upstream answered for chats not asked for; ignored", metadata: ["sync.chats": "\(answer.unexpected)"])
        }

        let fetchedAt = clock.now()
        let entries = answer.found.map { ParticipantsEntry($0, fetchedAt: fetchedAt) }
        var result = BatchOutcome.Result.written
        if !entries.isEmpty || !answer.notFound.isEmpty,
            await store.storeBatch(entries, notFound: answer.notFound) == .deferred
        {
            result = .deferred
        }
        if errors.count > Self.errorLinesPerBatch {
            let more = errors.count - (Self.errorLinesPerBatch - 1)
            errors = errors.prefix(Self.errorLinesPerBatch - 1) + ["batch \(batch.number): \(more) more errors"]
        }
        return BatchOutcome(
            runID: batch.runID, batchNumber: batch.number, result: result,
            chatsRefreshed: entries.count, chatsNotFound: answer.notFound.count,
            chatsFailed: answer.failedCount, errors: errors)
    }

    private nonisolated func batchLogger(_ batch: SyncBatch) -> Logger {
        var logger = logger
        logger[metadataKey: "sync.run_id"] = "\(batch.runID)"
        logger[metadataKey: "sync.batch"] = "\(batch.number)"
        return logger
    }
}

/// A batch answer sorted against what was asked: each requested chat is found, not found or
/// failed (malformed, or left out of a partial answer), exactly once.
struct BatchAnswer {
    /// Requested chats upstream returned, first occurrence of each.
    var found: [UpstreamChat] = []
    /// Requested chats upstream does not know (and did not also return).
    var notFound: [ChatID] = []
    /// Requested chats neither returned, reported unknown, nor sent malformed.
    var missing: [ChatID] = []
    /// Requested chats that are neither found nor not found: malformed or missing.
    var failedCount = 0
    /// Chats in the answer that were not asked for.
    var unexpected = 0

    init(requested: [ChatID], response: BatchGetResponse) {
        let requestedSet = Set(requested)
        var settled: Set<ChatID> = []
        for chat in response.chats {
            guard requestedSet.contains(chat.chatID) else {
                unexpected += 1
                continue
            }
            if settled.insert(chat.chatID).inserted { found.append(chat) }
        }
        for text in response.notFound {
            guard let chat = ChatID(validating: text), requestedSet.contains(chat) else {
                unexpected += 1
                continue
            }
            if settled.insert(chat).inserted { notFound.append(chat) }
        }
        let malformed = Set(response.rejected.compactMap { $0.chatID.flatMap(ChatID.init(validating:)) })
        missing = requested.filter { !settled.contains($0) && !malformed.contains($0) }
        failedCount = requested.count - settled.count
    }
}
