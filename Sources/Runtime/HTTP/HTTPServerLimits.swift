/// Bounds the server puts on each connection, against oversized and slow clients.
public struct HTTPServerLimits: Sendable, Hashable {
    /// Request line plus headers, in bytes. Over it the server answers 400 `headers_too_large`
    /// (JSON) and closes. Default 8 KiB.
    public var maxHeadersSize: Int
    /// Request body, in bytes, declared (`Content-Length`) or received (chunked). Over it the
    /// server answers 413 `body_too_large` (JSON), without reading the body, and closes once the
    /// client has read the answer. Default 1 MiB.
    public var maxBodySize: Int
    /// How long a connection may go without progress while the server reads from it or writes
    /// to it: a slow (slowloris) client mid-request, or an idle keep-alive connection, is closed
    /// after it. Time a handler spends is not counted. Default 10 s.
    public var readTimeout: Duration
    /// How long a connection may take to send one whole request (line, headers, body), from the
    /// accept or the end of the previous reply; past it the connection is closed. The read
    /// timeout restarts with every byte, so it alone cannot stop a client that drips bytes
    /// (see ``ServerConnection``). Time a handler spends is not counted. Default 30 s.
    public var requestDeadline: Duration

    public init(
        maxHeadersSize: Int = 8 * 1024,
        maxBodySize: Int = 1024 * 1024,
        readTimeout: Duration = .seconds(10),
        requestDeadline: Duration = .seconds(30)
    ) {
        precondition(maxHeadersSize > 0 && maxBodySize >= 0, "limits must be positive")
        precondition(readTimeout > .zero, "readTimeout must be positive")
        precondition(requestDeadline > .zero, "requestDeadline must be positive")
        self.maxHeadersSize = maxHeadersSize
        self.maxBodySize = maxBodySize
        self.readTimeout = readTimeout
        self.requestDeadline = requestDeadline
    }
}
