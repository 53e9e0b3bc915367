public import Actors

/// Every state a ``RedisSupervisor`` publishes, in order, from the moment it is made.
public actor StateLog {
    public private(set) var states: [RedisState] = []

    /// A log fed by `supervisor`'s state changes until the supervisor ends its stream.
    public static func recording(_ supervisor: RedisSupervisor) async -> StateLog {
        let log = StateLog()
        let stream = await supervisor.stateChanges()
        Task { for await change in stream { await log.append(change.to) } }
        return log
    }

    private init() {}

    private func append(_ state: RedisState) { states.append(state) }

    /// Forgets what was recorded so far.
    public func clear() { states.removeAll() }
}
