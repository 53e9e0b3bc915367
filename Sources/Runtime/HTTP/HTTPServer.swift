import CLibEvent
import Foundation
public import Logging

/// An HTTP/1.1 server on libevent's evhttp, running on one ``EventLoop``.
///
/// evhttp parses requests and enforces ``HTTPServerLimits``; each request is routed by an
/// ``HTTPRouter``: unknown paths get 404, known paths with another method 405 with `Allow`, an
/// invalid percent-escape 400, all with the JSON error body. A routed request becomes an
/// ``HTTPRequest`` copied out of C memory. The route's ``HTTPImmediateHandler``, if any, may
/// answer it at once inside the evhttp callback; otherwise its handler runs in a task whose
/// executor preference is the loop, so the reply is written on the loop without a thread hop.
/// ``PendingReply`` guarantees a reply is never written to a request libevent freed because
/// the client left or the server stopped.
///
/// The actor runs on the loop's executor. A started server keeps itself alive until ``stop()``
/// or ``shutdown(gracePeriod:)``: evhttp holds a pointer to it.
public actor HTTPServer {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let loop: EventLoop
    private let router: HTTPRouter
    private let limits: HTTPServerLimits
    private let logger: Logger

    private enum State {
        case idle, running, draining, stopped
    }

    private var state: State = .idle
    private var http: OpaquePointer?
    private var listener: OpaquePointer?
    private var retainedWhileRunning: Unmanaged<HTTPServer>?
    private var drainWaiters: [CheckedContinuation<Void, Never>] = []
    /// Open connections, by `evhttp_connection`: each keeps its request deadline.
    private var connections: [OpaquePointer: ServerConnection] = [:]

    /// Requests handed to a handler whose reply is not yet written (or abandoned).
    public private(set) var inFlight = 0
    private var dateHeader = HTTPDateHeader()

    public init(loop: EventLoop, router: HTTPRouter, limits: HTTPServerLimits = .init(), logger: Logger) {
        self.loop = loop
        self.router = router
        self.limits = limits
        self.logger = logger
        self.unownedExecutor = loop.asUnownedSerialExecutor()
    }

    /// Binds `host:port` (port 0 picks a free one) and starts serving; returns the bound port.
    public func start(host: String, port: Int) throws(HTTPServerError) -> Int {
        guard state == .idle else {
            throw HTTPServerError(code: .invalidState, message: "the server was already started")
        }
        guard (0...65535).contains(port) else {
            throw HTTPServerError(code: .bindFailed, message: "port \(port) is out of range")
        }
        guard let http = evhttp_new(loop.base) else {
            throw HTTPServerError(code: .setupFailed, message: "evhttp_new failed")
        }
        evhttp_set_max_headers_size(http, limits.maxHeadersSize)
        evhttp_set_max_body_size(http, limits.maxBodySize)
        var timeout = timeval(duration: limits.readTimeout)
        evhttp_set_timeout_tv(http, &timeout)
        evhttp_set_allowed_methods(http, HTTPMethod.evhttpAllowedMask)
        // Drain an oversized body before answering 413, so the client reads the answer
        // instead of a reset; the read timeout still bounds a client that drips.
        _ = evhttp_set_flags(http, EVHTTP_SERVER_LINGERING_CLOSE)
        // No made-up text/html Content-Type on our replies; evhttp's own error pages set theirs.
        evhttp_set_default_content_type(http, nil)

        let retained = Unmanaged.passRetained(self)
        // Called for every accepted connection, before evhttp builds its evhttp_connection:
        // we create the bufferevent evhttp would have created, and adopt the connection once it
        // exists (ServerConnection: the request deadline evhttp lacks).
        evhttp_set_bevcb(
            http,
            { base, context in
                guard let base, let context else { return nil }
                let server = Unmanaged<HTTPServer>.fromOpaque(context).takeUnretainedValue()
                let bev = bufferevent_socket_new(base, -1, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
                if let bev {
                    let accepted = UnsafeBufferevent(pointer: bev)
                    server.assumeIsolated { $0.adoptSoon(accepted.pointer) }
                }
                return bev
            }, retained.toOpaque())
        evhttp_set_gencb(
            http,
            { request, context in
                guard let request, let context else { return }
                let server = Unmanaged<HTTPServer>.fromOpaque(context).takeUnretainedValue()
                let incoming = UnsafeRequest(pointer: request)
                server.assumeIsolated { $0.receive(incoming.pointer) }
            }, retained.toOpaque())

        let bound = host.withCString { evhttp_bind_socket_with_handle(http, $0, UInt16(port)) }
        guard let bound else {
            let reason = String(cString: strerror(errno))
            evhttp_free(http)
            retained.release()
            logger.error(
                "HTTP server could not bind",
                metadata: ["http.host": "\(host)", "http.port": "\(port)", "error": "\(reason)"])
            throw HTTPServerError(code: .bindFailed, message: "cannot bind \(host):\(port): \(reason)")
        }
        let boundPort = Self.localPort(of: evhttp_bound_socket_get_fd(bound)) ?? port
        self.http = http
        self.listener = bound
        self.retainedWhileRunning = retained
        state = .running
        logger.info("HTTP server listening", metadata: ["http.host": "\(host)", "http.port": "\(boundPort)"])
        return boundPort
    }

    /// Stops at once: closes the listening socket and every connection. Handlers still
    /// running finish, but their replies are dropped. Idempotent.
    public func stop() {
        switch state {
        case .idle:
            state = .stopped
        case .running, .draining:
            freeEvhttp()
            state = .stopped
            resumeDrainWaiters()
            logger.info("HTTP server stopped", metadata: ["http.in_flight": "\(inFlight)"])
        case .stopped:
            break
        }
    }

    /// Stops accepting connections, waits up to `gracePeriod` for in-flight requests to be
    /// answered (requests arriving meanwhile on open connections are still served, with
    /// `Connection: close`), then stops.
    public func shutdown(gracePeriod: Duration) async {
        switch state {
        case .idle:
            state = .stopped
            return
        case .stopped:
            return
        case .running:
            closeListener()
            state = .draining
            logger.info("HTTP server draining", metadata: ["http.in_flight": "\(inFlight)"])
        case .draining:
            break
        }
        if inFlight > 0 {
            let deadline = LoopTimer(loop: loop) { [self] in
                assumeIsolated { $0.resumeDrainWaiters() }
            }
            deadline.schedule(after: gracePeriod)
            await withCheckedContinuation { continuation in
                // Re-checked here: the last reply may have gone out since the check above.
                if inFlight > 0 {
                    drainWaiters.append(continuation)
                } else {
                    continuation.resume()
                }
            }
            deadline.cancel()
        }
        // stop() may have run while we waited.
        if state == .draining {
            if inFlight > 0 {
                logger.warning("HTTP server grace period over", metadata: ["http.in_flight": "\(inFlight)"])
            }
            stop()
        }
    }

    // MARK: Requests

    // MARK: Connections

    /// Adopts the connection built around `bev` once evhttp has built it: evhttp calls the
    /// bevcb first and makes the connection after. An event with no timeout runs later in this
    /// same loop iteration, before the new socket can be read, so the connection is there and
    /// has not been freed — unless the server stopped meanwhile (checked in adopt).
    private func adoptSoon(_ bev: OpaquePointer) {
        let ticket = Unmanaged.passRetained(AdoptionTicket(server: self, bev: bev))
        let scheduled = event_base_once(
            loop.base, -1, Int16(EV_TIMEOUT),
            { _, _, context in
                guard let context else { return }
                let ticket = Unmanaged<AdoptionTicket>.fromOpaque(context).takeRetainedValue()
                let bev = UnsafeBufferevent(pointer: ticket.bev)
                ticket.server.assumeIsolated { $0.adopt(bev.pointer) }
            }, ticket.toOpaque(), nil)
        if scheduled != 0 {
            ticket.release()
            logger.warning("HTTP server could not schedule a connection's adoption; it has no request deadline")
        }
    }

    private func adopt(_ bev: OpaquePointer) {
        // Stopped since the accept: evhttp_free freed the connection and its bufferevent.
        guard state == .running || state == .draining else { return }
        var context: UnsafeMutableRawPointer?
        bufferevent_getcb(bev, nil, nil, nil, &context)
        // evhttp's bufferevent callbacks carry the connection as their argument.
        guard let context, let evcon = Optional(OpaquePointer(context)),
            evhttp_connection_get_bufferevent(evcon) == bev
        else {
            logger.warning("HTTP server could not find a new connection; it has no request deadline")
            return
        }
        _ = tracked(evcon)
    }

    /// The adopted connection `evcon`, adopted now if it was not yet.
    private func tracked(_ evcon: OpaquePointer) -> ServerConnection {
        if let connection = connections[evcon] { return connection }
        let connection = ServerConnection(
            evcon: evcon, loop: loop, requestDeadline: limits.requestDeadline, logger: logger
        ) { [weak self] closed in
            self?.assumeIsolated { $0.connections[closed.evcon] = nil }
        }
        connections[evcon] = connection
        return connection
    }

    /// Number of open connections (adopted ones).
    public var openConnections: Int { connections.count }

    // MARK: Requests

    private func receive(_ request: UnsafeMutablePointer<evhttp_request>) {
        guard let evcon = evhttp_request_get_connection(request) else {
            // Unreachable: a request reaches the callback attached to its connection.
            write(
                .error(status: 500, code: "internal", message: "request without connection"), to: request, method: .GET)
            return
        }
        let connection = tracked(evcon)
        connection.requestArrived()
        // Replies written here, before any handler: the clock restarts once they are out.
        connection.restartClockAfterReply(to: request)
        guard let method = HTTPMethod(evhttpCommand: evhttp_request_get_command(request)) else {
            // Unreachable: evhttp only lets the methods of HTTPMethod through.
            write(
                .error(status: 501, code: "not_implemented", message: "method not implemented"), to: request,
                method: .GET)
            return
        }
        guard let uri = evhttp_request_get_evhttp_uri(request) else {
            write(
                .error(status: 400, code: "bad_request", message: "malformed request target"), to: request,
                method: method)
            return
        }
        var rawPath = evhttp_uri_get_path(uri).map { String(cString: $0) } ?? ""
        if rawPath.isEmpty { rawPath = "/" }
        // Without escapes (nearly always) the path is the raw path, no copy.
        let hasEscapes = rawPath.utf8.contains(UInt8(ascii: "%"))
        guard let segments = URLDecoding.pathSegments(rawPath[...]),
            let path = hasEscapes ? URLDecoding.percentDecode(rawPath[...], plusAsSpace: false) : rawPath
        else {
            write(
                .error(status: 400, code: "invalid_path", message: "the path is not validly percent-encoded"),
                to: request, method: method)
            return
        }
        var query: [String: String] = [:]
        if let rawQuery = evhttp_uri_get_query(uri) {
            guard let parsed = URLDecoding.queryParameters(String(cString: rawQuery)[...]) else {
                write(
                    .error(status: 400, code: "invalid_query", message: "the query is not validly percent-encoded"),
                    to: request, method: method)
                return
            }
            query = parsed
        }

        switch router.resolve(method: method, segments: segments) {
        case .notFound:
            write(.error(status: 404, code: "not_found", message: "no route for \(path)"), to: request, method: method)
        case .methodNotAllowed(let allowed):
            var response = HTTPResponse.error(
                status: 405, code: "method_not_allowed", message: "\(method.rawValue) is not allowed on \(path)")
            response.headers.append(("Allow", allowed.map(\.rawValue).joined(separator: ", ")))
            write(response, to: request, method: method)
        case .found(let route, let parameters):
            var peerAddress: UnsafeMutablePointer<CChar>?
            var peerPort: UInt16 = 0
            evhttp_connection_get_peer(evcon, &peerAddress, &peerPort)
            let incoming = HTTPRequest(
                method: method,
                path: path,
                query: query,
                headers: EvhttpMessage.headers(of: request),
                body: EvhttpMessage.body(of: request),
                pathParameters: parameters,
                remoteAddress: peerAddress.map { String(cString: $0) } ?? "",
                remotePort: Int(peerPort)
            )
            if let immediate = route.immediate, let response = immediate(incoming) {
                write(response, to: request, method: method)
                return
            }
            let handler = route.handler
            let pending = PendingReply(server: self, request: request, connection: connection, method: method)
            pending.arm()
            inFlight += 1
            Task(executorPreference: loop) {
                let response = await handler(incoming)
                pending.server.handlerFinishedOnLoop(pending, response: response)
            }
        }
    }

    /// Enters the actor without a hop: the handler's task prefers the loop as its executor, so
    /// its nonisolated code, here included, runs on the loop thread (`assumeIsolated` checks).
    private nonisolated func handlerFinishedOnLoop(_ pending: PendingReply, response: HTTPResponse) {
        assumeIsolated { $0.handlerFinished(pending, response: response) }
    }

    private func handlerFinished(_ pending: PendingReply, response: HTTPResponse) {
        let finished = pending.handlerFinished { request in
            write(response, to: request, method: pending.method)
        }
        if finished { replyFinished() }
    }

    /// A pending reply is written, or will never be: one request less in flight.
    func replyFinished() {
        inFlight -= 1
        if inFlight == 0 { resumeDrainWaiters() }
    }

    /// Writes `response` to a live request: from the evhttp callback, or once its handler
    /// returned and ``PendingReply`` vouched for the request.
    private func write(_ response: HTTPResponse, to request: UnsafeMutablePointer<evhttp_request>, method: HTTPMethod) {
        let status = (100...599).contains(response.status) ? response.status : 500
        let headers = evhttp_request_get_output_headers(request)
        for (name, value) in response.headers where !name.asciiCaseInsensitiveEquals("Content-Length") {
            // evhttp drops names and values with CR or LF: no header injection.
            _ = evhttp_add_header(headers, name, value)
        }
        if state == .draining {
            _ = evhttp_remove_header(headers, "Connection")
            _ = evhttp_add_header(headers, "Connection", "close")
        }
        // Date and Content-Length here rather than by evhttp, which formats both with snprintf
        // on every reply (a few percent of a cache hit): the date is formatted once a second.
        if !response.headers.contains(where: { $0.0.asciiCaseInsensitiveEquals("Date") }) {
            _ = evhttp_add_header(headers, "Date", dateHeader.current())
        }
        // evhttp writes whatever is in the output buffer, even where HTTP forbids a body.
        let statusAllowsBody = status >= 200 && status != 204 && status != 304
        if statusAllowsBody && method != .HEAD {
            _ = evhttp_add_header(headers, "Content-Length", String(response.body.count))
            if !response.body.isEmpty {
                let output = evhttp_request_get_output_buffer(request)
                response.body.withUnsafeBytes { _ = evbuffer_add(output, $0.baseAddress, $0.count) }
            }
        } else if statusAllowsBody {
            // HEAD: the length the GET would have; evhttp adds none without a body.
            _ = evhttp_add_header(headers, "Content-Length", String(response.body.count))
        }
        evhttp_send_reply(request, Int32(status), nil, nil)
    }

    // MARK: Helpers

    private func closeListener() {
        if let http, let listener {
            evhttp_del_accept_socket(http, listener)
        }
        listener = nil
    }

    private func freeEvhttp() {
        closeListener()
        if let http {
            // Frees every connection: their close callbacks settle the pending replies.
            evhttp_free(http)
        }
        http = nil
        connections.removeAll()
        retainedWhileRunning?.release()
        retainedWhileRunning = nil
    }

    private func resumeDrainWaiters() {
        let waiters = drainWaiters
        drainWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    private static func localPort(of socket: Int32) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard result == 0 else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    Int(UInt16(bigEndian: $0.pointee.sin6_port))
                }
            }
        default:
            return nil
        }
    }
}

/// A connection's bufferevent and its server, between the accept and the adoption.
private final class AdoptionTicket: @unchecked Sendable {
    // @unchecked Sendable: made and consumed on the loop thread, within one loop iteration.
    let server: HTTPServer
    let bev: OpaquePointer

    init(server: HTTPServer, bev: OpaquePointer) {
        self.server = server
        self.bev = bev
    }
}

/// Carries a `bufferevent` pointer into `assumeIsolated`.
private struct UnsafeBufferevent: @unchecked Sendable {
    // @unchecked Sendable: created and consumed synchronously on the loop thread.
    let pointer: OpaquePointer
}

/// Carries an `evhttp_request` pointer from the evhttp callback into `assumeIsolated`.
private struct UnsafeRequest: @unchecked Sendable {
    // @unchecked Sendable: created and consumed synchronously on the loop thread.
    let pointer: UnsafeMutablePointer<evhttp_request>
}
