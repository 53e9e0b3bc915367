/// One request's place in its connection's reply order, from the moment it is parsed until its
/// reply is in the connection's output buffer (or will never be).
///
/// HTTP/1.1 answers pipelined requests in the order they came, so a reply that is ready early
/// waits in its slot until every earlier one was written. A slot outlives its connection when the
/// connection closes while the handler works: ``ServerConnection`` then detaches it, and the
/// handler's reply is dropped here; no C object is ever reached through a detached slot.
final class ReplySlot: @unchecked Sendable {
    // @unchecked Sendable: created on the loop thread, and every method runs there (the read
    // callback, or the handler's task, whose executor preference is the loop). The task only
    // carries it across the handler's `await`, without touching it.

    /// HEAD: the reply carries the length but not the body.
    let omitsBody: Bool
    /// What the reply says about the connection (before the server's own reasons to close).
    let directive: ConnectionDirective
    /// An error answer to a request that may still be arriving: before closing, read and drop
    /// what the client sends, so that it reads the answer instead of a reset.
    let lingers: Bool
    /// The request went to a handler: it counts in the server's ``HTTPServer/inFlight`` until
    /// its reply is written or dropped.
    private(set) var isDeferred = false
    /// The reply, once there is one.
    private(set) var response: HTTPResponse?
    private let context: ServerContext
    private var connection: ServerConnection?

    init(
        context: ServerContext, connection: ServerConnection, omitsBody: Bool, directive: ConnectionDirective,
        lingers: Bool = false
    ) {
        self.context = context
        self.connection = connection
        self.omitsBody = omitsBody
        self.directive = directive
        self.lingers = lingers
    }

    /// Answers at once (a routing error, an immediate handler, a parse failure).
    func respond(_ response: HTTPResponse) {
        self.response = response
        connection?.writeReadyReplies()
    }

    /// The request goes to its handler; ``handlerFinished(_:)`` will follow.
    func markDeferred() {
        isDeferred = true
        context.handlerStarted()
    }

    /// The handler returned (on the loop thread): queue the reply, or drop it if the connection
    /// is gone.
    func handlerFinished(_ response: HTTPResponse) {
        guard let connection else {
            context.replyFinished()
            return
        }
        self.response = response
        connection.writeReadyReplies()
    }

    /// The connection will never write this reply (it closed, or an earlier reply closes it).
    /// A handler still working finds the slot detached when it returns.
    func abandon() {
        connection = nil
        if isDeferred && response != nil { context.replyFinished() }
    }

    /// The reply was written to the connection's output buffer.
    func written() {
        connection = nil
    }
}
