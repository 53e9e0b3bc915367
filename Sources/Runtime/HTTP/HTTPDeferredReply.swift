/// Takes a routed request in the server's callback, on the loop thread, and answers it later
/// through the ``HTTPDeferredReply``, from a C callback that fires on the same loop (a Redis
/// reply, a timer): no task, no executor hop. ``HTTPDeferredReply/decline()`` passes the
/// request on to the route's ``HTTPHandler``. It must not block, and may enter actors that run
/// on the server's loop with `assumeIsolated`.
public typealias HTTPDeferredHandler = @Sendable (HTTPRequest, HTTPDeferredReply) -> Void

/// The one answer to a request an ``HTTPDeferredHandler`` took: a response, or a decline that
/// hands the request to the route's async handler. Given exactly once, on the server's loop
/// thread, either inside the handler or later.
///
/// The server has registered the request as in flight before the handler sees it, so a client
/// that leaves meanwhile, a drain or a stop are handled as for async handlers (``PendingReply``):
/// an answer to a request libevent freed is dropped.
public final class HTTPDeferredReply: @unchecked Sendable {
    // @unchecked Sendable: made on the loop thread by the server, completed there (checked by
    // `complete`); handlers only carry it into callbacks of the same loop.
    private let loop: EventLoop
    private var deliver: ((HTTPResponse?) -> Void)?

    /// A reply that hands its answer (nil: declined) to `deliver`, once.
    public init(loop: EventLoop, deliver: @escaping (HTTPResponse?) -> Void) {
        self.loop = loop
        self.deliver = deliver
    }

    /// Answers the request with `response`.
    public func respond(_ response: HTTPResponse) { complete(response) }

    /// Passes the request on to the route's async handler.
    public func decline() { complete(nil) }

    /// Whether the answer was given.
    public var isComplete: Bool { deliver == nil }

    /// A reply that lets `observe` see the answer (nil for a decline) before handing it to this
    /// one: for instrumentation around a handler.
    public func observed(by observe: @escaping (HTTPResponse?) -> Void) -> HTTPDeferredReply {
        HTTPDeferredReply(loop: loop) { response in
            observe(response)
            self.complete(response)
        }
    }

    private func complete(_ response: HTTPResponse?) {
        loop.preconditionInLoop()
        guard let deliver else {
            assertionFailure("a deferred HTTP reply was given twice")
            return
        }
        self.deliver = nil
        deliver(response)
    }
}
