import CLibEvent
public import Logging

/// An HTTP/1.1 client on libevent's evhttp, for one upstream base URL, running on one
/// ``EventLoop``.
///
/// Keeps up to `maxConnections` keep-alive connections. A request goes to an idle connection,
/// else to a new one while under the limit, else it queues on the connection with the fewest
/// requests (evhttp sends one request at a time per connection, no pipelining). A connection
/// the server closed reconnects on its next request. Requests are never retried: a failure
/// is reported, and the caller decides (a POST may have been processed).
///
/// Every request has a timeout that covers queueing, connecting and the whole response; a
/// cancelled calling task ends its request with ``HTTPClientError/Code/cancelled``.
///
/// The actor runs on the loop's executor. Call ``close()`` when done: it fails the requests
/// in flight and closes the connections.
public actor HTTPClient {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    /// The base URL every request path is appended to.
    public nonisolated let baseURL: String
    private let loop: EventLoop
    private let target: HTTPBaseURL
    private let maxConnections: Int
    private let maxResponseBodySize: Int
    private let logger: Logger

    /// Status line plus headers of a response; more is treated as a broken upstream.
    private static let maxResponseHeadersSize = 64 * 1024

    private var connections: [HTTPClientConnection] = []
    private var inFlight: [UInt64: HTTPClientRequest] = [:]
    private var nextRequestID: UInt64 = 0
    private var isClosed = false

    /// - Parameters:
    ///   - baseURL: `http://host[:port][/prefix]`, with a numeric host (`127.0.0.1`, `[::1]`).
    ///   - maxConnections: keep-alive connections at most; requests queue beyond.
    ///   - maxResponseBodySize: a larger response body fails with `invalidResponse`.
    public init(
        loop: EventLoop, baseURL: String, maxConnections: Int = 8,
        maxResponseBodySize: Int = 64 * 1024 * 1024, logger: Logger
    ) throws(HTTPClientError) {
        guard let target = HTTPBaseURL(baseURL) else {
            throw HTTPClientError(code: .invalidURL, message: "not an http://host[:port][/prefix] URL: \(baseURL)")
        }
        guard maxConnections > 0 else {
            throw HTTPClientError(code: .invalidURL, message: "maxConnections must be positive, got \(maxConnections)")
        }
        self.loop = loop
        self.baseURL = baseURL
        self.target = target
        self.maxConnections = maxConnections
        self.maxResponseBodySize = maxResponseBodySize
        self.logger = logger
        self.unownedExecutor = loop.asUnownedSerialExecutor()
    }

    deinit {
        // Normally empty (close() ran). evhttp connections must be freed on the loop thread.
        let leftovers = EvhttpConnections(pointers: connections.map(\.evcon))
        if !leftovers.pointers.isEmpty {
            Task(executorPreference: loop) {
                for connection in leftovers.pointers { evhttp_connection_free(connection) }
            }
        }
    }

    /// Sends one request and waits for its complete response.
    ///
    /// - Parameters:
    ///   - path: the path after the base URL's prefix, starting with `/`, already
    ///     percent-encoded, with its query (`/v1/chats?page_size=10`).
    ///   - headers: extra request headers; `Host` is set unless given. With a body,
    ///     `Content-Length` is always set and `Content-Type` defaults to `application/json`.
    ///   - timeout: bound on the whole exchange, queueing and connecting included.
    public func execute(
        method: HTTPMethod, path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: Duration
    ) async throws(HTTPClientError) -> HTTPClientResponse {
        guard !isClosed else { throw HTTPClientError(code: .closed, message: "the client is closed") }
        guard path.first == "/", !path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw HTTPClientError(code: .invalidURL, message: "the path must start with '/' and be percent-encoded: \(path)")
        }
        let id = nextRequestID
        nextRequestID += 1
        let requestHeaders = completedHeaders(headers, hasBody: body != nil)
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPClientResponse, HTTPClientError>, Never>) in
                start(
                    id: id, method: method, target: target.pathPrefix + path, headers: requestHeaders,
                    body: body, timeout: timeout, continuation: continuation
                )
            }
        } onCancel: { [loop] in
            Task(executorPreference: loop) { await self.cancelRequest(id: id) }
        }
        return try result.get()
    }

    /// Fails the requests in flight with ``HTTPClientError/Code/closed`` and closes every
    /// connection. Later requests fail with `closed`. Idempotent.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        let connections = self.connections
        self.connections = []
        // Frees the queued requests without callbacks; the abandoned ones below never touch them.
        for connection in connections { evhttp_connection_free(connection.evcon) }
        let requests = inFlight.values
        inFlight = [:]
        for request in requests {
            request.abandon(HTTPClientError(code: .closed, message: "the client was closed"))
        }
    }

    // MARK: Requests

    private func start(
        id: UInt64, method: HTTPMethod, target: String, headers: [(String, String)], body: [UInt8]?,
        timeout: Duration, continuation: CheckedContinuation<Result<HTTPClientResponse, HTTPClientError>, Never>
    ) {
        if Task.isCancelled {
            continuation.resume(returning: .failure(HTTPClientError(code: .cancelled, message: "the task was cancelled")))
            return
        }
        guard let connection = pickConnection() else {
            continuation.resume(returning: .failure(HTTPClientError(code: .connectFailed, message: "evhttp_connection_base_new failed")))
            return
        }
        let request = HTTPClientRequest(id: id, connection: connection) { [self] request, result in
            // Isolated to this actor: runs from evhttp callbacks and timers, on the loop thread.
            requestFinished(request)
            continuation.resume(returning: result)
        }
        inFlight[id] = request
        connection.outstanding += 1
        request.send(loop: loop, method: method, target: target, headers: headers, body: body, timeout: timeout)
    }

    private func requestFinished(_ request: HTTPClientRequest) {
        inFlight[request.id] = nil
        request.connection.outstanding -= 1
    }

    private func cancelRequest(id: UInt64) {
        // No access to `inFlight` may span the abort: evhttp can complete other requests inside it.
        guard let request = inFlight[id] else { return }
        request.abort(HTTPClientError(code: .cancelled, message: "the task was cancelled"))
    }

    /// An idle connection, else a new one under the limit, else the least busy.
    private func pickConnection() -> HTTPClientConnection? {
        if let idle = connections.first(where: { $0.outstanding == 0 }) { return idle }
        if connections.count < maxConnections {
            let evcon = target.host.withCString { evhttp_connection_base_new(loop.base, nil, $0, target.port) }
            guard let evcon else { return nil }
            evhttp_connection_set_max_body_size(evcon, maxResponseBodySize)
            evhttp_connection_set_max_headers_size(evcon, Self.maxResponseHeadersSize)
            let connection = HTTPClientConnection(evcon: evcon, address: "\(target.host):\(target.port)")
            connections.append(connection)
            logger.debug("HTTP client connection opened", metadata: ["http.upstream": "\(baseURL)", "http.connections": "\(connections.count)"])
            return connection
        }
        return connections.min { $0.outstanding < $1.outstanding }
    }

    private func completedHeaders(_ headers: [(String, String)], hasBody: Bool) -> [(String, String)] {
        var result = headers
        if !headers.contains(where: { $0.0.asciiCaseInsensitiveEquals("Host") }) {
            result.append(("Host", target.hostHeader))
        }
        if hasBody && !headers.contains(where: { $0.0.asciiCaseInsensitiveEquals("Content-Type") }) {
            result.append(("Content-Type", "application/json"))
        }
        return result
    }
}

/// One evhttp client connection of an ``HTTPClient`` and how many requests it carries.
final class HTTPClientConnection: @unchecked Sendable {
    // @unchecked Sendable: used only on the loop thread, by the client actor (whose executor
    // is the loop) and its requests' evhttp callbacks; a deinit may hand it to the loop.
    let evcon: OpaquePointer
    let address: String
    var outstanding = 0

    init(evcon: OpaquePointer, address: String) {
        self.evcon = evcon
        self.address = address
    }
}

/// Carries evhttp connection pointers from a deinit to the loop that frees them.
private struct EvhttpConnections: @unchecked Sendable {
    // @unchecked Sendable: the owner is gone, so the loop thread that frees them is the only user.
    let pointers: [OpaquePointer]
}
