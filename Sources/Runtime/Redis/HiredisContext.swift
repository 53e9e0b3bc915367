import CHiredis

/// Owns one hiredis async context attached to an ``EventLoop``, and turns its C callbacks
/// into ``Event``s. Loop-confined: create it, call it and drop it on the loop thread only.
///
/// ## Events
/// Every command accepted by ``send(_:)`` is accounted for by exactly one `.reply`, or by the
/// single `.lost` event, after which no event follows. Replies arrive in the order the
/// commands were sent (hiredis keeps a FIFO of callbacks; pub/sub and MONITOR, which break
/// that, are refused by the connection).
///
/// ## Lifetime (hiredis 0.14)
/// - The context's `data` holds a retain of this object (`passRetained`), so the pointer the C
///   callbacks read never dangles. It is balanced when the context goes away: at once after our
///   own `redisAsyncFree` returns, or on a later loop turn when hiredis frees the context itself
///   (connect failure, disconnect), because hiredis may still run NULL-reply callbacks through
///   `data` after the connect callback.
/// - The pointer is dropped in the callbacks after which hiredis frees the context: the connect
///   callback with an error status (no disconnect callback follows) and the disconnect callback.
/// - ``free()`` never frees while one of this context's callbacks is on the stack: in 0.14 only
///   reply callbacks are covered by `REDIS_IN_CALLBACK`, and freeing from the connect or
///   disconnect callback is a use-after-free. Called inside a callback, it detaches the handler
///   at once and frees on a later loop turn, unless hiredis has freed the context by then.
final class HiredisContext {
    enum Event: Sendable {
        /// TCP connected (the handshake commands are still on their way).
        case connected
        case reply(RESPValue)
        /// The context is gone or going; pending commands will get no reply. The last event.
        case lost(Loss)
    }

    enum Loss: Sendable, Equatable {
        case connectFailed(String)
        case disconnected(String)
    }

    private let loop: EventLoop
    private var context: UnsafeMutablePointer<redisAsyncContext>?
    private var handler: ((Event) -> Void)?
    /// The retain held by `context.data`; nil once balanced or handed to a deferred release.
    private var retainedByContext: Unmanaged<HiredisContext>?
    private var callbackDepth = 0
    /// Where ``send(_:)`` formats commands; reused, see there.
    private var wireBuffer: [UInt8] = []
    /// `.lost` was delivered or the handler detached: further callbacks are ignored.
    private var lost = false

    private init(loop: EventLoop, handler: @escaping (Event) -> Void) {
        self.loop = loop
        self.handler = handler
    }

    deinit {
        assert(context == nil, "a hiredis context outlived its owner")
    }

    /// Starts a non-blocking connect to `host:port` and attaches it to `loop`.
    ///
    /// hiredis 0.14 would resolve a host name synchronously here, on the loop thread: `host` must
    /// be an address (``RedisConnection`` looks names up through the loop's ``DNSResolver``).
    static func connect(host: String, port: Int, loop: EventLoop, handler: @escaping (Event) -> Void) throws(RedisError)
        -> HiredisContext
    {
        loop.preconditionInLoop()
        precondition(NumericHost.isNumeric(host), "hiredis would resolve \(host) on the loop thread")
        guard let context = redisAsyncConnect(host, Int32(port)) else {
            throw RedisError(code: .connectFailed, message: "hiredis could not allocate a context")
        }
        if context.pointee.err != 0 {
            let message = errorMessage(of: context)
            // Not connected and no callback registered: freeing runs no callback.
            redisAsyncFree(context)
            throw RedisError(code: .connectFailed, message: message)
        }
        guard redisLibeventAttach(context, loop.base) == REDIS_OK else {
            redisAsyncFree(context)
            throw RedisError(code: .connectFailed, message: "could not attach the hiredis context to the event loop")
        }
        let wrapper = HiredisContext(loop: loop, handler: handler)
        let retained = Unmanaged.passRetained(wrapper)
        wrapper.context = context
        wrapper.retainedByContext = retained
        context.pointee.data = retained.toOpaque()
        redisAsyncSetConnectCallback(context) { context, status in
            guard let wrapper = HiredisContext.owner(of: context) else { return }
            wrapper.connectCallback(status: status, errorMessage: context.map { HiredisContext.errorMessage(of: $0) })
        }
        redisAsyncSetDisconnectCallback(context) { context, status in
            guard let wrapper = HiredisContext.owner(of: context) else { return }
            wrapper.disconnectCallback(
                status: status, errorMessage: context.map { HiredisContext.errorMessage(of: $0) })
        }
        return wrapper
    }

    /// Queues `command`. True means hiredis accepted it and one event will account for it.
    ///
    /// The command is written as RESP into a buffer reused from one command to the next and
    /// handed over already formatted: `redisAsyncCommandArgv` would need the arguments flattened
    /// into one C argv, then format them into a new allocation of its own, two more copies of
    /// every value (a batch write sends kilobytes per entry).
    func send(_ command: RedisCommand) -> Bool {
        loop.preconditionInLoop()
        guard !lost, let context, !command.arguments.isEmpty else { return false }
        // Taken out of the property for the call, so the buffer is uniquely referenced (appends
        // in place) and no exclusivity check spans the C call.
        var wire = wireBuffer
        wireBuffer = []
        wire.removeAll(keepingCapacity: true)
        wire.reserveCapacity(command.wireFormatCount)
        command.appendWireFormat(to: &wire)
        let status = wire.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                // hiredis copies the bytes into its output buffer before returning.
                redisAsyncFormattedCommand(
                    context,
                    { context, reply, _ in
                        guard let wrapper = HiredisContext.owner(of: context.map { UnsafePointer($0) }) else { return }
                        wrapper.replyCallback(reply: reply, context: context)
                    }, nil, chars.baseAddress, chars.count)
            }
        }
        // A huge command (a large EVAL or ZADD) does not pin its buffer for the connection's life.
        if wire.capacity <= Self.keptWireBufferCapacity { wireBuffer = wire }
        return status == REDIS_OK
    }

    /// The largest formatting buffer kept between commands.
    private static let keptWireBufferCapacity = 256 * 1024

    /// Detaches the handler and frees the context; idempotent. Commands still pending get no
    /// event: the owner fails them itself. See "Lifetime" for calls from inside a callback.
    func free() {
        loop.preconditionInLoop()
        handler = nil
        lost = true
        guard context != nil else { return }
        if callbackDepth > 0 {
            let deferred = LoopTimer(loop: loop) { [self] in freeNow() }
            deferred.schedule(after: .zero)
        } else {
            freeNow()
        }
    }

    private func freeNow() {
        guard let context else { return }
        self.context = nil
        let retained = retainedByContext
        retainedByContext = nil
        // Runs the pending reply callbacks with NULL and, if connected, the disconnect
        // callback; all of them find the handler detached and the pointer already dropped.
        redisAsyncFree(context)
        retained?.release()
    }

    // MARK: C callbacks

    private func connectCallback(status: Int32, errorMessage: String?) {
        callbackDepth += 1
        defer { callbackDepth -= 1 }
        if status == REDIS_OK {
            if !lost { handler?(.connected) }
            return
        }
        // hiredis frees the context when this returns; no disconnect callback follows.
        contextIsGoing()
        lose(.connectFailed(errorMessage ?? "connect failed"))
    }

    private func disconnectCallback(status: Int32, errorMessage: String?) {
        callbackDepth += 1
        defer { callbackDepth -= 1 }
        // hiredis frees the context when this returns.
        contextIsGoing()
        lose(.disconnected(status == REDIS_OK ? "connection closed" : errorMessage ?? "connection lost"))
    }

    private func replyCallback(reply: UnsafeMutableRawPointer?, context: UnsafeMutablePointer<redisAsyncContext>?) {
        callbackDepth += 1
        defer { callbackDepth -= 1 }
        guard !lost else { return }
        guard let reply else {
            // hiredis runs callbacks with NULL only while freeing the context.
            lose(.disconnected(context.map { Self.errorMessage(of: $0) } ?? "connection lost"))
            return
        }
        handler?(.reply(RESPValue(reply: reply.assumingMemoryBound(to: redisReply.self))))
    }

    private func lose(_ loss: Loss) {
        guard !lost else { return }
        lost = true
        let handler = self.handler
        self.handler = nil
        handler?(.lost(loss))
    }

    /// Drops the pointer hiredis is about to free and balances the retain on a later loop turn.
    private func contextIsGoing() {
        context = nil
        guard let retained = retainedByContext else { return }
        retainedByContext = nil
        let release = LoopTimer(loop: loop) { retained.release() }
        release.schedule(after: .zero)
    }

    // MARK: Helpers

    private static func owner(of context: UnsafePointer<redisAsyncContext>?) -> HiredisContext? {
        guard let data = context?.pointee.data else { return nil }
        return Unmanaged<HiredisContext>.fromOpaque(data).takeUnretainedValue()
    }

    private static func errorMessage(of context: UnsafePointer<redisAsyncContext>) -> String {
        // ac->errstr points at the inner context's error buffer, which hiredis fills before it
        // runs the connect callback; ac->err itself is only copied later.
        if let text = context.pointee.errstr, text.pointee != 0 {
            return String(cString: text)
        }
        return "unknown hiredis error"
    }

    private static func errorMessage(of context: UnsafeMutablePointer<redisAsyncContext>) -> String {
        errorMessage(of: UnsafePointer(context))
    }
}
