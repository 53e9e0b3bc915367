/// The streams of state changes a supervisor hands out: each starts with the current state and
/// ends when the supervisor stops.
struct StateSubscribers {
    private var continuations: [Int: AsyncStream<RedisStateChange>.Continuation] = [:]
    private var nextID = 0

    /// A new stream that starts with `current` (a change from the state to itself); it is
    /// finished at once when `stopped`. `unsubscribe` is called with its id when the
    /// subscriber stops listening, and must call ``remove(_:)`` on the owner's executor.
    mutating func add(
        startingWith current: RedisStateChange, stopped: Bool,
        unsubscribe: @escaping @Sendable (Int) -> Void
    ) -> AsyncStream<RedisStateChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: RedisStateChange.self)
        continuation.yield(current)
        if stopped {
            continuation.finish()
            return stream
        }
        let id = nextID
        nextID += 1
        continuations[id] = continuation
        continuation.onTermination = { _ in unsubscribe(id) }
        return stream
    }

    mutating func remove(_ id: Int) {
        continuations[id] = nil
    }

    func publish(_ change: RedisStateChange) {
        for continuation in continuations.values { continuation.yield(change) }
    }

    /// Ends every stream (the supervisor stopped).
    mutating func finishAll() {
        for continuation in continuations.values { continuation.finish() }
        continuations.removeAll()
    }
}
