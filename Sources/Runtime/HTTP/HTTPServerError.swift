/// Why ``HTTPServer/start(host:port:)`` failed.
public struct HTTPServerError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// The server was started before, or stopped: a server starts once.
        case invalidState
        /// The address could not be bound: the port is taken, or the host is not local.
        case bindFailed
        /// libevent could not allocate the server.
        case setupFailed
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "HTTPServerError(\(code)): \(message)" }
}
