import CLibEvent
import Logging

/// One accepted connection, from the moment evhttp creates it until evhttp frees it: the only
/// owner of the connection's close callback, and the keeper of its request deadline.
///
/// ## Why a deadline of our own
/// evhttp's read timeout (``HTTPServerLimits/readTimeout``) is a bufferevent timeout: it
/// restarts with every byte read. A client that drips one header byte just inside it keeps a
/// half-sent request, and its connection, open for ever (slowloris). libevent 2.1 has no bound
/// on a whole request, so each connection gets one here: a request must arrive whole (line,
/// headers and body) within ``HTTPServerLimits/requestDeadline``, counted from the accept or from
/// the end of the previous reply. Past it the connection is freed. The clock is stopped while a
/// request is with its handler and while its reply is written: those are bounded elsewhere (the
/// handlers' own timeouts, and the read/write timeout for a client that does not read).
///
/// ## Lifetime
/// `evhttp_connection_free` always calls the close callback first, whatever frees the connection
/// (EOF, a timeout, a failed write, `Connection: close` after a reply, `evhttp_free`, or this
/// deadline). The callback is armed from adoption to that call, and holds one retain of this
/// object, released in it. A ``PendingReply`` on the connection is told of the close from here:
/// evhttp keeps a single close callback per connection, so the two cannot each set their own.
final class ServerConnection: @unchecked Sendable {
    // @unchecked Sendable: created on the loop thread by the server, and only used there (evhttp
    // and timer callbacks, and the server's methods, which run on the loop executor).

    /// The `evhttp_connection`; valid until ``closed()`` ran.
    let evcon: OpaquePointer
    /// The request handed to a handler whose reply is not yet written, if any.
    var pendingReply: PendingReply?
    private let deadline: LoopTimer
    private let requestDeadline: Duration
    private var retainedForCallback: Unmanaged<ServerConnection>?
    private var onClose: ((ServerConnection) -> Void)?
    private(set) var isClosed = false

    /// Adopts `evcon`: arms its close callback and starts the clock for its first request.
    /// `onClose` runs once, inside the close callback, after any pending reply was told.
    init(
        evcon: OpaquePointer, loop: EventLoop, requestDeadline: Duration, logger: Logger,
        onClose: @escaping (ServerConnection) -> Void
    ) {
        self.evcon = evcon
        self.requestDeadline = requestDeadline
        self.onClose = onClose
        self.deadline = LoopTimer(loop: loop) {
            // The timer is cancelled in closed(), which runs before evhttp frees evcon, so a
            // firing timer always finds the connection alive.
            var peerAddress: UnsafeMutablePointer<CChar>?
            var peerPort: UInt16 = 0
            evhttp_connection_get_peer(evcon, &peerAddress, &peerPort)
            logger.debug(
                "HTTP connection closed: no whole request within the deadline",
                metadata: [
                    "http.peer": "\(peerAddress.map { String(cString: $0) } ?? "?"):\(peerPort)",
                    "http.request_deadline": "\(requestDeadline)",
                ])
            evhttp_connection_free(evcon)
        }
        let context = Unmanaged.passRetained(self)
        retainedForCallback = context
        evhttp_connection_set_closecb(
            evcon,
            { _, context in
                guard let context else { return }
                Unmanaged<ServerConnection>.fromOpaque(context).takeUnretainedValue().closed()
            }, context.toOpaque())
        deadline.schedule(after: requestDeadline)
    }

    /// A whole request arrived: stop the clock until its reply is written.
    func requestArrived() {
        deadline.cancel()
    }

    /// A reply was written and the connection waits for the next request: restart the clock.
    func replyWritten() {
        guard !isClosed else { return }
        deadline.schedule(after: requestDeadline)
    }

    /// Restarts the clock when `request`'s reply has been written. For replies written without a
    /// ``PendingReply`` (routing errors, immediate answers); the callback needs no retain: evhttp
    /// runs it before it frees the connection, and the close callback holds this object alive.
    func restartClockAfterReply(to request: UnsafeMutablePointer<evhttp_request>) {
        evhttp_request_set_on_complete_cb(
            request,
            { _, context in
                guard let context else { return }
                Unmanaged<ServerConnection>.fromOpaque(context).takeUnretainedValue().replyWritten()
            }, Unmanaged.passUnretained(self).toOpaque())
    }

    private func closed() {
        guard !isClosed else { return }
        isClosed = true
        deadline.cancel()
        let pending = pendingReply
        pendingReply = nil
        pending?.connectionClosed()
        onClose?(self)
        onClose = nil
        // evhttp frees the connection right after this callback; nothing may touch it after.
        let retained = retainedForCallback
        retainedForCallback = nil
        retained?.release()
    }
}
