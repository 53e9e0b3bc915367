import CLibEvent
public import Logging

/// An HTTP/1.1 client on libevent's evhttp, for one upstream base URL (`http://` or
/// `https://`), running on one ``EventLoop``.
///
/// Keeps up to `maxConnections` keep-alive connections, each carrying one request at a time
/// (evhttp does not pipeline). A request takes an idle connection, else opens a new one while
/// under the limit, else waits, first come first served, for one to become idle. Requests are
/// never retried: a failure is reported, and the caller decides (a POST may have been processed).
///
/// ## Connections
/// A new connection first looks the host up through the loop's ``DNSResolver`` (never a
/// blocking lookup on the loop), so a server that moved behind its name is followed at the next
/// connection. A connection is reused only after a complete response; one that closed (the
/// server's keep-alive ran out, a failure, a timeout) is freed and replaced by a new
/// evhttp connection, never reconnected in place: evhttp 2.1 would reconnect an HTTPS
/// connection with its old SSL object, whose session is over.
///
/// ## HTTPS
/// Through libevent's OpenSSL bufferevents: certificate and host name verified
/// (``TLSClientContext``), SNI sent. A handshake or verification failure fails the request
/// with ``HTTPClientError/Code/tlsFailed``; nothing ever falls back to plain HTTP.
///
/// Every request has a timeout that covers waiting for a connection, the lookup, connecting
/// and the whole response; a cancelled calling task ends its request with
/// ``HTTPClientError/Code/cancelled``.
///
/// The actor runs on the loop's executor. Call ``close()`` when done: it fails the requests
/// in flight and closes the connections.
public actor HTTPClient {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    /// The base URL every request path is appended to.
    public nonisolated let baseURL: String
    private let loop: EventLoop
    private let target: HTTPBaseURL
    private let tls: TLSClientContext?
    private let maxConnections: Int
    private let maxResponseBodySize: Int
    private let logger: Logger

    /// Status line plus headers of a response; more is treated as a broken upstream.
    private static let maxResponseHeadersSize = 64 * 1024

    private var connections: [HTTPClientConnection] = []
    /// Connections being set up (their host being looked up); they count against the limit.
    private var opening = 0
    private var waiters = ConnectionWaiters()
    private var inFlight: [UInt64: HTTPClientRequest] = [:]
    private var nextRequestID: UInt64 = 0
    private var isClosed = false
    /// evhttp connections made so far (each with its own SSL object for https); for tests.
    private(set) var connectionsOpened = 0
    /// Connections open and fit for another request; for tests.
    var liveConnections: Int { connections.filter { !$0.isRetired }.count }

    /// - Parameters:
    ///   - baseURL: `http[s]://host[:port][/prefix]`; the host a name, an IPv4 address or an
    ///     IPv6 address in brackets.
    ///   - tls: how `https` servers are verified; nil trusts the system's CA store.
    ///   - maxConnections: keep-alive connections at most; requests wait beyond.
    ///   - maxResponseBodySize: a larger response body fails with `invalidResponse`.
    public init(
        loop: EventLoop, baseURL: String, tls: TLSClientContext? = nil, maxConnections: Int = 8,
        maxResponseBodySize: Int = 64 * 1024 * 1024, logger: Logger
    ) throws(HTTPClientError) {
        guard let target = HTTPBaseURL(baseURL) else {
            throw HTTPClientError(code: .invalidURL, message: "not an http[s]://host[:port][/prefix] URL: \(baseURL)")
        }
        guard maxConnections > 0 else {
            throw HTTPClientError(code: .invalidURL, message: "maxConnections must be positive, got \(maxConnections)")
        }
        if target.isTLS {
            do {
                self.tls = try tls ?? TLSClientContext()
            } catch {
                throw HTTPClientError(code: .tlsFailed, message: "\(error)")
            }
        } else {
            self.tls = nil
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
        let leftovers = EvhttpConnections(connections: connections)
        if !leftovers.connections.isEmpty {
            Task(executorPreference: loop) {
                for connection in leftovers.connections { connection.free() }
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
    ///   - timeout: bound on the whole exchange: waiting for a connection, the lookup,
    ///     connecting and the response.
    public func execute(
        method: HTTPMethod, path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: Duration
    ) async throws(HTTPClientError) -> HTTPClientResponse {
        guard !isClosed else { throw HTTPClientError(code: .closed, message: "the client is closed") }
        guard path.first == "/", !path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw HTTPClientError(
                code: .invalidURL, message: "the path must start with '/' and be percent-encoded: \(path)")
        }
        let deadline = ContinuousClock.now + timeout
        let connection = try await acquireConnection(deadline: deadline, timeout: timeout)
        let id = nextRequestID
        nextRequestID += 1
        let requestHeaders = completedHeaders(headers, hasBody: body != nil)
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation {
                (continuation: CheckedContinuation<Result<HTTPClientResponse, HTTPClientError>, Never>) in
                start(
                    id: id, connection: connection, method: method, target: target.pathPrefix + path,
                    headers: requestHeaders, body: body, timeout: deadline - ContinuousClock.now,
                    continuation: continuation)
            }
        } onCancel: { [loop] in
            Task(executorPreference: loop) { await self.cancelRequest(id: id) }
        }
        return try result.get()
    }

    /// Fails the requests in flight and waiting with ``HTTPClientError/Code/closed`` and closes
    /// every connection. Later requests fail with `closed`. Idempotent.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        let connections = self.connections
        self.connections = []
        // Frees the queued requests without callbacks; the abandoned ones below never touch them.
        for connection in connections { connection.free() }
        let requests = inFlight.values
        inFlight = [:]
        for request in requests {
            request.abandon(HTTPClientError(code: .closed, message: "the client was closed"))
        }
        waiters.wakeAll()
    }

    // MARK: Connections

    /// An idle connection, reserved for one request: an idle one, else a new one under the
    /// limit, else the first to become idle or to free a place.
    private func acquireConnection(deadline: ContinuousClock.Instant, timeout: Duration) async throws(HTTPClientError)
        -> HTTPClientConnection
    {
        while true {
            guard !isClosed else { throw HTTPClientError(code: .closed, message: "the client was closed") }
            if Task.isCancelled { throw HTTPClientError(code: .cancelled, message: "the task was cancelled") }
            freeRetiredConnections()
            if let idle = connections.first(where: { !$0.isBusy && !$0.isRetired }) {
                idle.isBusy = true
                return idle
            }
            if connections.count + opening < maxConnections {
                return try await openConnection(deadline: deadline, timeout: timeout)
            }
            try await waitForConnection(until: deadline, timeout: timeout)
        }
    }

    /// Looks the host up and makes a new evhttp connection to its first address.
    private func openConnection(deadline: ContinuousClock.Instant, timeout: Duration) async throws(HTTPClientError)
        -> HTTPClientConnection
    {
        opening += 1
        defer {
            opening -= 1
            // A place is free again, or taken by the connection made: either way a waiter may go.
            waiters.wakeOne()
        }
        let addresses: [String]
        do {
            addresses = try await loop.resolver.resolve(target.host, timeout: deadline - ContinuousClock.now)
        } catch {
            switch error.code {
            case .timeout:
                throw HTTPClientError(code: .timeout, message: "no response within \(timeout): \(error)")
            case .cancelled:
                throw HTTPClientError(code: .cancelled, message: "the task was cancelled")
            case .notFound, .failed:
                throw HTTPClientError(code: .nameResolutionFailed, message: "\(error)")
            }
        }
        guard !isClosed else { throw HTTPClientError(code: .closed, message: "the client was closed") }
        guard let connection = makeConnection(address: addresses[0]) else {
            throw HTTPClientError(
                code: .connectFailed, message: "cannot set up a connection to \(target.host):\(target.port)")
        }
        connections.append(connection)
        connectionsOpened += 1
        connection.isBusy = true
        logger.debug(
            "HTTP client connection opened",
            metadata: [
                "http.upstream": "\(baseURL)", "http.address": "\(addresses[0])",
                "http.connections": "\(connections.count)",
            ])
        return connection
    }

    private func makeConnection(address: String) -> HTTPClientConnection? {
        let evcon: OpaquePointer
        var ssl: OpaquePointer?
        if let tls {
            guard let newSSL = tls.makeSSL(for: target.host) else { return nil }
            // The bufferevent owns the SSL object (BEV_OPT_CLOSE_ON_FREE frees it with it).
            guard
                let bufferevent = bufferevent_openssl_socket_new(
                    loop.base, -1, newSSL, BUFFEREVENT_SSL_CONNECTING,
                    Int32(BEV_OPT_CLOSE_ON_FREE.rawValue | BEV_OPT_DEFER_CALLBACKS.rawValue))
            else {
                SSL_free(newSSL)
                return nil
            }
            // Servers often close without a TLS close_notify; responses are framed by HTTP.
            bufferevent_openssl_set_allow_dirty_shutdown(bufferevent, 1)
            // The address is numeric, so evhttp's own lookup (NULL evdns base) never blocks.
            guard
                let created = evhttp_connection_base_bufferevent_new(loop.base, nil, bufferevent, address, target.port)
            else {
                bufferevent_free(bufferevent)
                return nil
            }
            evcon = created
            ssl = newSSL
        } else {
            guard let created = evhttp_connection_base_new(loop.base, nil, address, target.port) else { return nil }
            evcon = created
        }
        evhttp_connection_set_max_body_size(evcon, maxResponseBodySize)
        evhttp_connection_set_max_headers_size(evcon, Self.maxResponseHeadersSize)
        let name =
            target.host == address ? "\(target.host):\(target.port)" : "\(target.host):\(target.port) (\(address))"
        return HTTPClientConnection(evcon: evcon, ssl: ssl, address: name)
    }

    /// Frees the connections that closed and carry no request. Runs in actor jobs only, never
    /// inside an evhttp callback of the connection it frees.
    private func freeRetiredConnections() {
        guard connections.contains(where: { $0.isRetired && !$0.isBusy }) else { return }
        var kept: [HTTPClientConnection] = []
        for connection in connections {
            if connection.isRetired && !connection.isBusy {
                connection.free()
            } else {
                kept.append(connection)
            }
        }
        connections = kept
    }

    private func waitForConnection(until deadline: ContinuousClock.Instant, timeout: Duration)
        async throws(HTTPClientError)
    {
        let id = waiters.nextID()
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ConnectionWaiters.Outcome, Never>) in
                if Task.isCancelled {
                    continuation.resume(returning: .cancelled)
                    return
                }
                // Checked again inside the body (as elsewhere on the loop): a connection may have
                // been released between the caller's look and this wait.
                if connections.contains(where: { !$0.isBusy && !$0.isRetired })
                    || connections.count + opening < maxConnections
                {
                    continuation.resume(returning: .woken)
                    return
                }
                let timer = LoopTimer(loop: loop) { [self] in waiters.end(id, with: .timedOut) }
                timer.schedule(after: deadline - ContinuousClock.now)
                waiters.add(id, continuation: continuation, timer: timer)
            }
        } onCancel: { [loop] in
            Task(executorPreference: loop) { await self.cancelWaiter(id) }
        }
        switch outcome {
        case .woken: return
        case .timedOut: throw HTTPClientError(code: .timeout, message: "no connection free within \(timeout)")
        case .cancelled: throw HTTPClientError(code: .cancelled, message: "the task was cancelled")
        }
    }

    private func cancelWaiter(_ id: UInt64) {
        waiters.end(id, with: .cancelled)
    }

    // MARK: Requests

    private func start(
        id: UInt64, connection: HTTPClientConnection, method: HTTPMethod, target: String,
        headers: [(String, String)], body: [UInt8]?, timeout: Duration,
        continuation: CheckedContinuation<Result<HTTPClientResponse, HTTPClientError>, Never>
    ) {
        if Task.isCancelled || isClosed {
            connection.isBusy = false
            waiters.wakeOne()
            let error =
                isClosed
                ? HTTPClientError(code: .closed, message: "the client was closed")
                : HTTPClientError(code: .cancelled, message: "the task was cancelled")
            continuation.resume(returning: .failure(error))
            return
        }
        let request = HTTPClientRequest(id: id, connection: connection) { [self] request, result in
            // Isolated to this actor: runs from evhttp callbacks and timers, on the loop thread.
            requestFinished(request, result: result)
            continuation.resume(returning: result)
        }
        inFlight[id] = request
        request.send(loop: loop, method: method, target: target, headers: headers, body: body, timeout: timeout)
    }

    private func requestFinished(_ request: HTTPClientRequest, result: Result<HTTPClientResponse, HTTPClientError>) {
        inFlight[request.id] = nil
        let connection = request.connection
        connection.isBusy = false
        // Only a complete response leaves a connection fit for the next request; after a
        // failure evhttp has reset it and would reconnect it in place.
        if case .failure = result { connection.isRetired = true }
        // Wakes a waiter as a job of its own: this may run inside an evhttp callback.
        waiters.wakeOne()
    }

    private func cancelRequest(id: UInt64) {
        // No access to `inFlight` may span the abort: evhttp can complete other requests inside it.
        guard let request = inFlight[id] else { return }
        request.abort(HTTPClientError(code: .cancelled, message: "the task was cancelled"))
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

/// Carries evhttp connections from a deinit to the loop that frees them.
private struct EvhttpConnections: @unchecked Sendable {
    // @unchecked Sendable: the owner is gone, so the loop thread that frees them is the only user.
    let connections: [HTTPClientConnection]
}
