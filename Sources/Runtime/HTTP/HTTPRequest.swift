/// A request the server received, fully read and decoded, detached from the connection.
///
/// The server copies everything out of the connection's buffer before a handler runs, so a
/// handler may keep or send this value anywhere; it never points into C memory.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The percent-decoded path, without the query (`/v1/chats/a b` for `/v1/chats/a%20b`).
    public var path: String
    /// The query parameters, percent-decoded with `+` as a space. When a key appears several
    /// times, the first occurrence wins.
    public var query: [String: String]
    /// The request headers; lookups ignore case: `request.headers["authorization"]`.
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The values of the route's `{name}` segments, percent-decoded.
    public var pathParameters: [String: String]
    /// The peer's IP address (`127.0.0.1`, `::1`).
    public var remoteAddress: String
    /// The peer's TCP port; requests with the same address and port came over one connection.
    public var remotePort: Int

    public init(
        method: HTTPMethod,
        path: String,
        query: [String: String] = [:],
        headers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8] = [],
        pathParameters: [String: String] = [:],
        remoteAddress: String = "",
        remotePort: Int = 0
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.pathParameters = pathParameters
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
    }
}

/// Handles one routed request. Runs on the server's event loop (as its task executor), so
/// work that needs no other actor stays on the loop thread.
public typealias HTTPHandler = @Sendable (HTTPRequest) async -> HTTPResponse

/// Answers a routed request synchronously, on the loop thread inside the server's read
/// callback, or returns nil to pass it to the route's ``HTTPHandler``. For answers that need
/// no `await` (a cache hit): no task is created and the reply is written before the callback
/// returns. It must not block, and may enter actors that run on the server's loop with
/// `assumeIsolated`.
public typealias HTTPImmediateHandler = @Sendable (HTTPRequest) -> HTTPResponse?
