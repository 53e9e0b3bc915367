/// Why an ``HTTPClient`` request produced no response.
public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// The TCP connection could not be made (refused, unreachable).
        case connectFailed
        /// The host name has no address (the resolver said so, or failed).
        case nameResolutionFailed
        /// The TLS handshake failed or the server's certificate did not verify; also a TLS
        /// setting that cannot be used. Never followed by a plain-HTTP attempt.
        case tlsFailed
        /// No complete response within the request's timeout (queueing and connecting included).
        case timeout
        /// The server closed the connection before the response was complete.
        case connectionClosed
        /// The server answered something that is not an HTTP response, or one too large.
        case invalidResponse
        /// The base URL or the request path is not usable.
        case invalidURL
        /// The client was closed.
        case closed
        /// The calling task was cancelled.
        case cancelled
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "HTTPClientError(\(code)): \(message)" }
}
