public import Logging

/// An HTTP/1.1 server on one ``EventLoop``: libevent's `evconnlistener` and bufferevents, with
/// the joyent/nodejs http-parser reading requests straight from each connection's input buffer.
///
/// Connections keep alive (HTTP/1.1 by default, HTTP/1.0 on `Connection: keep-alive`), and
/// pipelined requests are answered strictly in order. ``HTTPServerLimits`` bounds each request's
/// head and body, and each connection's idle time and time to send one whole request.
///
/// Each request is routed by an ``HTTPRouter``. Every error the server answers itself carries
/// the JSON error body of ``HTTPResponse/error(status:code:message:)``: an unknown path 404, a
/// known path with another method (any other method, TRACE or QUERY included) 405 with `Allow`,
/// an invalid percent-escape 400; and, before routing, a malformed request (a transfer coding
/// other than chunked included) 400, headers over the limit 400, a body over the limit 413,
/// CONNECT 501, after which the connection closes.
///
/// A route's ``HTTPImmediateHandler``, if any, may answer at once inside the read callback on
/// the loop thread; otherwise its handler runs in a task whose executor preference is the loop,
/// so the reply is written on the loop without a thread hop. A reply to a connection that has
/// gone away is dropped (``ReplySlot``).
///
/// The actor runs on the loop's executor. A started server keeps itself alive until ``stop()``
/// or ``shutdown(gracePeriod:)``.
public actor HTTPServer {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let loop: EventLoop
    private let logger: Logger
    private let context: ServerContext

    private enum State {
        case idle, running, draining, stopped
    }

    private var state: State = .idle
    private var listener: HTTPListener?
    private var retainedWhileRunning: Unmanaged<HTTPServer>?
    private var drainWaiters: [CheckedContinuation<Void, Never>] = []

    public init(loop: EventLoop, router: HTTPRouter, limits: HTTPServerLimits = .init(), logger: Logger) {
        self.loop = loop
        self.logger = logger
        self.context = ServerContext(loop: loop, router: router, limits: limits, logger: logger)
        self.unownedExecutor = loop.asUnownedSerialExecutor()
    }

    /// Requests handed to a handler whose reply is not yet written (or abandoned).
    public var inFlight: Int { context.inFlight }

    /// Number of open connections.
    public var openConnections: Int { context.openConnections }

    /// Binds `host:port` (port 0 picks a free one) and starts serving; returns the bound port.
    public func start(host: String, port: Int) throws(HTTPServerError) -> Int {
        guard state == .idle else {
            throw HTTPServerError(code: .invalidState, message: "the server was already started")
        }
        guard (0...65535).contains(port) else {
            throw HTTPServerError(code: .bindFailed, message: "port \(port) is out of range")
        }
        let context = context
        let listener: HTTPListener
        do {
            listener = try HTTPListener(loop: loop, host: host, port: port) { socket, address, port in
                context.accept(socket: socket, remoteAddress: address, remotePort: port)
            }
        } catch {
            logger.error(
                "HTTP server could not bind",
                metadata: ["http.host": "\(host)", "http.port": "\(port)", "error": "\(error.message)"])
            throw error
        }
        context.onQuiet = { [weak self] in
            self?.assumeIsolated { $0.resumeDrainWaiters() }
        }
        self.listener = listener
        retainedWhileRunning = Unmanaged.passRetained(self)
        state = .running
        logger.info("HTTP server listening", metadata: ["http.host": "\(host)", "http.port": "\(listener.port)"])
        return listener.port
    }

    /// Stops at once: closes the listening socket and every connection. Handlers still
    /// running finish, but their replies are dropped. Idempotent.
    public func stop() {
        switch state {
        case .idle:
            state = .stopped
        case .running, .draining:
            listener?.close()
            listener = nil
            context.closeAll()
            state = .stopped
            resumeDrainWaiters()
            retainedWhileRunning?.release()
            retainedWhileRunning = nil
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
            listener?.close()
            listener = nil
            context.isDraining = true
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

    private func resumeDrainWaiters() {
        let waiters = drainWaiters
        drainWaiters = []
        for waiter in waiters { waiter.resume() }
    }
}
