import Logging

/// What the connections of one ``HTTPServer`` share: the router and limits, the reply
/// serializer, the open connections and the count of requests in flight.
///
/// Loop-confined: libevent callbacks, reply slots and the server actor (whose executor is the
/// loop) all reach it on the loop thread, without a hop.
final class ServerContext: @unchecked Sendable {
    // @unchecked Sendable: created by the server actor and used only on its loop's thread (the
    // actor's methods, libevent callbacks and handler tasks that prefer the loop as executor).

    let loop: EventLoop
    let router: HTTPRouter
    let limits: HTTPServerLimits
    let logger: Logger
    var serializer = HTTPResponseSerializer()
    /// Draining (``HTTPServer/shutdown(gracePeriod:)``): every reply says `Connection: close`.
    var isDraining = false
    /// Requests handed to a handler whose reply is not yet written, or dropped.
    private(set) var inFlight = 0
    /// Runs when ``inFlight`` drops to zero.
    var onQuiet: (() -> Void)?
    private var connections: [ObjectIdentifier: ServerConnection] = [:]

    init(loop: EventLoop, router: HTTPRouter, limits: HTTPServerLimits, logger: Logger) {
        self.loop = loop
        self.router = router
        self.limits = limits
        self.logger = logger
    }

    var openConnections: Int { connections.count }

    /// Takes over an accepted socket.
    func accept(socket: Int32, remoteAddress: String, remotePort: Int) {
        guard
            let connection = ServerConnection(
                context: self, socket: socket, remoteAddress: remoteAddress, remotePort: remotePort)
        else {
            logger.warning("HTTP server could not set up an accepted connection")
            return
        }
        connections[ObjectIdentifier(connection)] = connection
    }

    func connectionClosed(_ connection: ServerConnection) {
        connections[ObjectIdentifier(connection)] = nil
    }

    /// Closes every connection at once; their pending replies are dropped.
    func closeAll() {
        for connection in Array(connections.values) { connection.close() }
        connections.removeAll()
    }

    func handlerStarted() {
        inFlight += 1
    }

    /// A deferred reply is written to its socket, or will never be.
    func replyFinished() {
        inFlight -= 1
        if inFlight == 0 { onQuiet?() }
    }
}
