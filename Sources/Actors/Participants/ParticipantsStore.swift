public import Foundation

/// Where refreshed participants go: Redis (shared by every instance) and this instance's L1.
/// ``ParticipantsCache`` is the implementation; the Batcher and Scheduler only see this.
public protocol ParticipantsStore: Sendable {
    /// Stores one batch's results: entries in one pipelined Redis write plus L1, unknown chats in
    /// the negative cache. While Redis is not ready the entries go to L1 and a write-back buffer
    /// that is flushed when Redis is back (`.deferred`); when that buffer is full the call waits
    /// for Redis instead of dropping anything, which slows the producer down.
    func storeBatch(_ entries: [ParticipantsEntry], notFound: [ChatID]) async -> StoreOutcome

    /// When each chat was last fetched, where known; chats without an entry are absent.
    func fetchedAt(of chats: [ChatID]) async -> [ChatID: Date]

    /// Chats read or refreshed on demand since `since` (the tracked chats of DESIGN §7).
    func trackedChats(since: Date) async -> [ChatID]
}

/// What happened to a stored batch.
public enum StoreOutcome: Sendable, Hashable {
    /// Written to Redis.
    case written
    /// Kept in L1 and the write-back buffer; written when Redis is back.
    case deferred
}
