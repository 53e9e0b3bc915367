/// Bounds the server puts on each connection, against oversized and slow clients.
public struct HTTPServerLimits: Sendable, Hashable {
    /// Request line plus headers, in bytes. Over it evhttp answers 400 and closes. Default 8 KiB.
    public var maxHeadersSize: Int
    /// Request body, in bytes. Over it evhttp answers 413 (its own HTML body: libevent 2.1 has
    /// no hook for that reply) and closes. Default 1 MiB.
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
