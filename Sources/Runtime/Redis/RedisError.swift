/// A failure of a Redis connection or command.
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// TCP connect failed (refused, unreachable, name not resolved).
        case connectFailed
        /// Connecting, AUTH and SELECT did not finish within the connect timeout.
        case connectTimeout
        /// A command got no reply within the command timeout; the connection was dropped.
        case commandTimeout
        /// The connection was lost (server gone, network error).
        case disconnected
        /// The connection was closed by ``RedisConnection/close()``.
        case closed
        /// AUTH was refused.
        case authFailed
        /// SELECT was refused.
        case selectFailed
        /// Redis answered the command with an error reply.
        case server
        /// The command cannot be sent on this connection, or hiredis rejected it.
        case protocolError
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "Redis \(code): \(message)" }
}
