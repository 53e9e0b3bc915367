/// Cuts a stream of chat ids into batches of at most `batchSize` distinct chats, holding no more
/// than one partial batch: a full run streams pages through it without ever holding the whole
/// chat list.
struct BatchAccumulator {
    let batchSize: Int
    private var pending: [ChatID] = []
    private var pendingSet: Set<ChatID> = []

    init(batchSize: Int) {
        precondition(batchSize >= 1, "a batch holds at least one chat")
        self.batchSize = batchSize
    }

    /// Adds `chats`; returns the batches they completed. A chat already in the partial batch is
    /// dropped, so a batch never asks upstream twice for one chat.
    mutating func add(_ chats: some Sequence<ChatID>) -> [[ChatID]] {
        var completed: [[ChatID]] = []
        for chat in chats where pendingSet.insert(chat).inserted {
            pending.append(chat)
            if pending.count == batchSize {
                completed.append(pending)
                pending.removeAll(keepingCapacity: true)
                pendingSet.removeAll(keepingCapacity: true)
            }
        }
        return completed
    }

    /// The partial batch, if any, emptying the accumulator.
    mutating func flush() -> [ChatID]? {
        guard !pending.isEmpty else { return nil }
        defer {
            pending.removeAll()
            pendingSet.removeAll()
        }
        return pending
    }
}
