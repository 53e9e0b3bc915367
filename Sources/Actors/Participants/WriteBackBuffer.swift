public import Foundation

/// The entries ``ParticipantsCache`` could not write to Redis, as a pure value: no I/O, no
/// clock, no tasks. The cache feeds it events and carries out the actions it returns.
///
/// Invariants:
/// - newest wins: per chat only the entry with the latest `fetchedAt` is kept;
/// - never more than `limit` entries. A single store that finds no room overflows (the entry
///   stays in L1 only, counted); a batch store waits for room (backpressure on the sync);
/// - a flush removes an entry only if it is still the one the flush wrote: an entry rewritten
///   newer while its chunk was in flight stays for the next flush;
/// - while entries are pending and Redis is ready, a flush or a retry is on the way (Redis may
///   refuse writes while staying ready, `-OOM`; nothing would signal when it accepts them again).
///
/// ```
/// idle     --redisReady | retryDue(ready), entries pending--> flushing   writeChunk
/// flushing --chunkWritten, more pending, none refused-->      flushing   writeChunk
/// flushing --chunkWritten, done or refused | flushFailed-->   idle       flushFinished (+ scheduleRetry if pending)
/// idle | flushing --keep-->                                   same       (overflowed | wait) (+ scheduleRetry)
/// idle     --shutdown-->                                      shutDown   resumeWaiters(all)
/// ```
/// Impossible events (``isAllowed(_:)`` is false) trap in debug builds and are ignored in release.
public struct WriteBackBuffer: Sendable, Hashable {
    /// Identifies one suspended batch store.
    public typealias WaiterID = Int

    public enum Event: Sendable, Hashable {
        /// Entries Redis did not take. `batch`: the caller waits for room rather than overflow.
        case keep([ParticipantsEntry], batch: Bool)
        /// The supervisor became ready: flush what is pending.
        case redisReady
        /// The retry scheduled by ``Action/scheduleRetry`` is due; `redisReady` is the supervisor's state now.
        case retryDue(redisReady: Bool)
        /// The outstanding chunk's replies: `accepted` written (or older than what Redis holds),
        /// `refused` how many Redis answered with an error (e.g. `-OOM`).
        case chunkWritten(accepted: [ParticipantsEntry], refused: Int)
        /// The outstanding chunk got no replies (Redis went away) or the flush was cancelled.
        case flushFailed
        /// A waiting batch store's task was cancelled; it no longer waits.
        case waiterCancelled(WaiterID)
        /// The cache stops: nobody will flush any more, so nobody may wait for room.
        case shutdown
    }

    public enum Action: Sendable, Hashable {
        /// Write these entries (write-if-newer), then report ``Event/chunkWritten(accepted:refused:)``
        /// or ``Event/flushFailed``.
        case writeChunk([ParticipantsEntry])
        /// Resume these waiting batch stores; each tries to keep its remaining entries again.
        case resumeWaiters([WaiterID])
        /// Send ``Event/retryDue(redisReady:)`` after the retry delay.
        case scheduleRetry
        /// No room: these entries stay in L1 only (count and log them).
        case overflowed([ParticipantsEntry])
        /// The batch store must wait as `id` until resumed, then keep `remaining`.
        case wait(id: WaiterID, remaining: [ParticipantsEntry])
        /// A flush ended: `written` entries written by it, `pending` left.
        case flushFinished(written: Int, pending: Int)
    }

    public enum Phase: Sendable, Hashable {
        case idle
        /// A chunk (chat → `fetchedAt` of the entry sent) is in flight; `written` so far.
        case flushing(chunk: [ChatID: Date], written: Int)
        case shutDown
    }

    public let limit: Int
    public let chunkSize: Int
    public private(set) var phase: Phase = .idle
    /// Newest entry per chat, not yet in Redis.
    public private(set) var pending: [ChatID: ParticipantsEntry] = [:]
    /// Batch stores waiting for room, in arrival order.
    public private(set) var waiters: [WaiterID] = []
    public private(set) var retryScheduled = false
    private var nextWaiterID: WaiterID = 0

    public init(limit: Int, chunkSize: Int = 200) {
        precondition(limit >= 0 && chunkSize > 0)
        self.limit = limit
        self.chunkSize = chunkSize
    }

    public var count: Int { pending.count }
    public func entry(for chat: ChatID) -> ParticipantsEntry? { pending[chat] }

    /// Whether `event` can happen now. False only for what a correct cache never does: a
    /// flush's result with no chunk in flight (or naming a chat it did not send), a retry nobody
    /// scheduled, a waiter id never handed out, and anything but a store after shutdown.
    public func isAllowed(_ event: Event) -> Bool {
        switch (phase, event) {
        case (_, .keep): true
        case (_, .waiterCancelled(let id)): id < nextWaiterID
        case (.shutDown, _): false
        case (.idle, .redisReady), (.flushing, .redisReady): true
        case (_, .retryDue): retryScheduled
        case (.flushing(let chunk, _), .chunkWritten(let accepted, let refused)):
            accepted.count + refused <= chunk.count
                && accepted.allSatisfy { chunk[$0.chatID] == $0.fetchedAt }
        case (.idle, .chunkWritten), (.idle, .flushFailed): false
        case (.flushing, .flushFailed): true
        case (.idle, .shutdown): true
        // The cache ends its loops, which own every flush, before it shuts the buffer.
        case (.flushing, .shutdown): false
        }
    }

    /// The one transition function.
    public mutating func handle(_ event: Event) -> [Action] {
        guard isAllowed(event) else {
            assertionFailure("write-back buffer: \(event) cannot happen in \(phase)")
            return []
        }
        switch event {
        case .keep(let entries, let batch):
            return keep(entries, wait: batch && phase != .shutDown)
        case .redisReady:
            return startFlush()
        case .retryDue(let redisReady):
            retryScheduled = false
            // Not ready: the next `redisReady` flushes.
            return redisReady ? startFlush() : []
        case .chunkWritten(let accepted, let refused):
            return chunkWritten(accepted: accepted, refused: refused)
        case .flushFailed:
            guard case .flushing(_, let written) = phase else { return [] }
            return endFlush(written: written)
        case .waiterCancelled(let id):
            // Already resumed (the flush and the cancellation raced): nothing to do.
            waiters.removeAll { $0 == id }
            return []
        case .shutdown:
            phase = .shutDown
            retryScheduled = false
            return resumeWaiters(all: true)
        }
    }

    // MARK: Transitions

    private mutating func keep(_ entries: [ParticipantsEntry], wait: Bool) -> [Action] {
        var remaining: [ParticipantsEntry] = []
        for entry in entries {
            if let current = pending[entry.chatID] {
                // Replacing needs no room.
                if current.fetchedAt < entry.fetchedAt { pending[entry.chatID] = entry }
            } else if pending.count < limit {
                pending[entry.chatID] = entry
            } else {
                remaining.append(entry)
            }
        }
        var actions: [Action] = []
        // Only called after a write failed: retry it, in case Redis refused while staying ready.
        if !pending.isEmpty, phase != .shutDown, !retryScheduled {
            retryScheduled = true
            actions.append(.scheduleRetry)
        }
        if remaining.isEmpty { return actions }
        // With no room at all (limit 0) none can ever appear: waiting would never end.
        if wait, limit > 0 {
            let id = nextWaiterID
            nextWaiterID += 1
            waiters.append(id)
            actions.append(.wait(id: id, remaining: remaining))
        } else {
            actions.append(.overflowed(remaining))
        }
        return actions
    }

    private mutating func startFlush() -> [Action] {
        // A flush in progress already writes everything, including what came since it began.
        guard phase == .idle, !pending.isEmpty else { return [] }
        return nextChunk(written: 0)
    }

    private mutating func nextChunk(written: Int) -> [Action] {
        let chunk = Array(pending.values.prefix(chunkSize))
        phase = .flushing(
            chunk: Dictionary(uniqueKeysWithValues: chunk.map { ($0.chatID, $0.fetchedAt) }), written: written)
        return [.writeChunk(chunk)]
    }

    private mutating func chunkWritten(accepted: [ParticipantsEntry], refused: Int) -> [Action] {
        guard case .flushing(_, let writtenBefore) = phase else { return [] }
        for entry in accepted where pending[entry.chatID]?.fetchedAt == entry.fetchedAt {
            pending[entry.chatID] = nil
        }
        let written = writtenBefore + accepted.count
        let actions = resumeWaiters(all: false)
        if refused == 0, !pending.isEmpty {
            return actions + nextChunk(written: written)
        }
        return actions + endFlush(written: written)
    }

    private mutating func endFlush(written: Int) -> [Action] {
        phase = .idle
        var actions: [Action] = [.flushFinished(written: written, pending: pending.count)]
        if !pending.isEmpty, !retryScheduled {
            retryScheduled = true
            actions.append(.scheduleRetry)
        }
        return actions
    }

    /// Every waiter when there is room (each re-checks; those that do not fit wait again), or
    /// unconditionally at shutdown.
    private mutating func resumeWaiters(all: Bool) -> [Action] {
        guard !waiters.isEmpty, all || pending.count < limit else { return [] }
        let resumed = waiters
        waiters.removeAll()
        return [.resumeWaiters(resumed)]
    }
}
