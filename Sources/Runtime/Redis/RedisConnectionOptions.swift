/// Timeouts of a ``RedisConnection``.
public struct RedisConnectionOptions: Sendable {
    /// Bounds TCP connect, AUTH and SELECT together.
    public var connectTimeout: Duration = .seconds(5)
    /// Bounds each command from the moment it is queued. A command that gets no reply in time
    /// means the server is presumed dead: the whole connection is dropped.
    public var commandTimeout: Duration = .seconds(5)

    public init(connectTimeout: Duration = .seconds(5), commandTimeout: Duration = .seconds(5)) {
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }
}
