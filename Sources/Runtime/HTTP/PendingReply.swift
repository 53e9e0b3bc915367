import CLibEvent

/// One routed request between the evhttp callback and the end of its reply, and the proof that
/// the server never touches an `evhttp_request` that libevent freed.
///
/// ## What libevent 2.1.12 does with a request the user has not answered yet
/// - While the handler runs, evhttp has reading disabled on the connection, so a client that
///   goes away is only noticed once the reply is written. The request is freed only by
///   `evhttp_connection_free`, reached from `evhttp_free` (the server stops) or from a failed
///   write. That function calls the connection's close callback first, then frees the
///   requests still queued on the connection.
/// - On a read timeout or EOF of a request the user has not answered (`userdone == 0`), evhttp
///   detaches the request from its connection (`req->evcon = NULL`), does not free it, and
///   frees the connection, calling the close callback. Such a request must be freed by us.
/// - After `evhttp_send_reply`, the request lives until the reply is written: then evhttp calls
///   the on-complete callback and frees it. A write error frees the connection instead,
///   calling the close callback, and the on-complete callback never runs.
///
/// So the connection's close callback (owned by ``ServerConnection``, which forwards it here from
/// the moment the request is handed to a handler until the reply is written) tells us about
/// every way the request can die; in it,
/// `evhttp_request_get_connection(req) == NULL` tells the detached case (we free) from the
/// freed case (we forget).
///
/// ## States
/// ```
/// handling --handler done--> replying --written (on-complete)--> done
/// handling --close cb, request queued--> connectionGone --handler done--> done
/// handling --close cb, request detached--> detached --handler done: free it--> done
/// replying --close cb (write failed, server freed)--> done
/// ```
/// The C callbacks hold one retain of this object from ``arm()`` until the last of them ran.
final class PendingReply: @unchecked Sendable {
    // @unchecked Sendable: created on the loop thread, and every method runs there (evhttp
    // callbacks, and the server's isolated methods on the loop executor). The handler's task
    // only carries it across its await, without touching it.

    enum State: Equatable {
        case handling, connectionGone, detached, replying, done
    }

    private(set) var state: State = .handling
    let method: HTTPMethod
    let server: HTTPServer
    private var request: UnsafeMutablePointer<evhttp_request>?
    private var connection: ServerConnection?
    private var retainedForCallbacks: Unmanaged<PendingReply>?

    init(
        server: HTTPServer, request: UnsafeMutablePointer<evhttp_request>, connection: ServerConnection,
        method: HTTPMethod
    ) {
        self.server = server
        self.request = request
        self.connection = connection
        self.method = method
    }

    /// Registers with the connection; from now on its close callback tells us when the request
    /// dies.
    func arm() {
        retainedForCallbacks = Unmanaged.passRetained(self)
        connection?.pendingReply = self
    }

    /// The handler returned: reply if the request is still alive. Returns true when the
    /// request is finished (no reply is pending in libevent any more).
    func handlerFinished(write: (UnsafeMutablePointer<evhttp_request>) -> Void) -> Bool {
        switch state {
        case .handling:
            guard let request else { preconditionFailure("handling without a request") }
            state = .replying
            evhttp_request_set_on_complete_cb(
                request,
                { _, context in
                    guard let context else { return }
                    Unmanaged<PendingReply>.fromOpaque(context).takeUnretainedValue().replyWritten()
                }, retainedForCallbacks?.toOpaque())
            write(request)
            return false
        case .connectionGone:
            state = .done
            return true
        case .detached:
            if let request { evhttp_request_free(request) }
            request = nil
            state = .done
            return true
        case .replying, .done:
            preconditionFailure("handler finished twice")
        }
    }

    /// The connection's close callback ran (forwarded by ``ServerConnection``).
    func connectionClosed() {
        switch state {
        case .handling:
            // Queued on the closing connection: freed right after this callback. Detached:
            // survives, and is ours to free.
            if let request, evhttp_request_get_connection(request) == nil {
                state = .detached
            } else {
                request = nil
                state = .connectionGone
            }
            connection = nil
            releaseCallbacks()
        case .replying:
            request = nil
            connection = nil
            state = .done
            releaseCallbacks()
            server.assumeIsolated { $0.replyFinished() }
        case .connectionGone, .detached, .done:
            // Unregistered when we reach these states; nothing to do.
            break
        }
    }

    private func replyWritten() {
        guard state == .replying else { return }
        // evhttp may free the connection right after this (Connection: close): unregister first.
        connection?.pendingReply = nil
        connection?.replyWritten()
        request = nil
        connection = nil
        state = .done
        releaseCallbacks()
        server.assumeIsolated { $0.replyFinished() }
    }

    private func releaseCallbacks() {
        retainedForCallbacks?.release()
        retainedForCallbacks = nil
    }
}
