import CLibEvent
import Foundation
import Logging

/// One accepted connection: its bufferevent, its request parser, its replies in order, and the
/// timers that bound a slow client.
///
/// ## Reading
/// Requests are parsed straight from the bufferevent's input buffer (``HTTPRequestParser``).
/// Bytes of a request's head stay in the buffer until the head is complete; everything else is
/// drained as soon as it is parsed. Pipelined requests are parsed as they come, up to
/// ``maxPipelined`` waiting for their replies; past that, reading pauses.
///
/// ## Replies in order
/// Each request gets a ``ReplySlot``; replies go to the output buffer strictly in slot order.
/// A request's handler may finish after the connection closed: the slot is detached then, and
/// its reply dropped.
///
/// ## Timeouts
/// - The read timeout (bufferevent, restarts with every byte read) closes an idle keep-alive
///   connection and a client that stops mid-request. It is ignored while a reply is pending
///   (a handler works, or a reply is being written): handler time does not count.
/// - The write timeout closes a client that stops reading its replies.
/// - The request deadline (``HTTPServerLimits/requestDeadline``): a request must arrive whole
///   within it, counted from the accept or from the end of the previous reply. The read timeout
///   restarts with every byte, so it alone cannot stop a client that drips bytes (slowloris).
///   The clock restarts when a reply has been written (a clock read, not a timer update: when
///   the timer fires early it re-arms itself for what is left). A firing while a reply is owed
///   is ignored and the flush re-arms it: the clock stops while a handler works and while a
///   reply is written.
///
/// ## Closing
/// After a reply that closes the connection (`Connection: close`, HTTP/1.0, a parse error, the
/// server draining) the connection closes once the output is written. When the client may still
/// be sending (an error answer, or unread input), it lingers first: shuts its write side and
/// reads and drops input until the client closes or ``lingerTimeout`` passes, so the client reads
/// the answer instead of a reset.
final class ServerConnection: @unchecked Sendable {
    // @unchecked Sendable: created on the loop thread, and used only there (libevent callbacks,
    // timer handlers, the server's methods on the loop executor, and reply slots).

    /// Requests parsed and not yet answered, at most; more pause reading.
    static let maxPipelined = 16
    /// The longest a closing connection reads and drops input before it closes anyway.
    static let lingerTimeout: Duration = .seconds(5)

    let remoteAddress: String
    let remotePort: Int
    private let context: ServerContext
    private var bufferevent: OpaquePointer?
    private let parser: HTTPRequestParser
    private var deadline: LoopTimer?

    /// Bytes at the start of the input buffer the parser has seen and that are kept: the current
    /// request's head so far.
    private var seen = 0
    /// Requests parsed and not yet written, in arrival order.
    private var slots: [ReplySlot] = []
    /// Deferred replies in the output buffer, not yet on the socket.
    private var deferredAwaitingFlush = 0
    /// No further request is read: after one that closes, a parse error, or EOF.
    private var parsingEnded = false
    private var closeWhenFlushed = false
    private var lingerWhenFlushed = false
    private var lingering = false
    private var peerFinished = false
    private var readingPaused = false
    /// The socket did not take the whole output: the bufferevent's write event finishes it.
    private var writing = false
    private var processing = false
    /// A final reply went to the output since the last flush: the deadline restarts at the flush.
    private var replyWritten = false
    /// A deferred reply went to the output: the read timeout restarts at the flush (an immediate
    /// reply follows its request's last read within microseconds, so its timeout needs no restart).
    private var readTimeoutStale = false
    /// When the request deadline's clock last started: the accept, or the flush of a reply.
    private var clockStart = ContinuousClock.now

    /// Wraps the accepted `socket`; closes it and returns nil if libevent cannot.
    init?(context: ServerContext, socket: Int32, remoteAddress: String, remotePort: Int) {
        self.context = context
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        parser = HTTPRequestParser(limits: context.limits)
        guard let bufferevent = bufferevent_socket_new(context.loop.base, socket, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
        else {
            Glibc.close(socket)
            return nil
        }
        self.bufferevent = bufferevent
        // Replies are written whole, one per request: Nagle would only delay pipelined ones.
        var noDelay: Int32 = 1
        _ = setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
        // Unretained: the server's context holds the connection until close(), which frees the
        // bufferevent and with it these callbacks.
        let context = Unmanaged.passUnretained(self).toOpaque()
        bufferevent_setcb(
            bufferevent,
            { _, context in ServerConnection.of(context).readable() },
            { _, context in ServerConnection.of(context).writeCompleted() },
            { _, what, context in ServerConnection.of(context).event(Int32(what)) },
            context)
        var timeout = timeval(duration: self.context.limits.readTimeout)
        bufferevent_set_timeouts(bufferevent, &timeout, &timeout)
        // Writing (on by default) is enabled only while a reply waits for the socket (see
        // flushOutput()).
        bufferevent_disable(bufferevent, Int16(EV_WRITE))
        bufferevent_enable(bufferevent, Int16(EV_READ))
        deadline = LoopTimer(loop: self.context.loop) { [weak self] in self?.deadlinePassed() }
        deadline?.schedule(after: self.context.limits.requestDeadline)
    }

    private static func of(_ context: UnsafeMutableRawPointer?) -> ServerConnection {
        Unmanaged<ServerConnection>.fromOpaque(context!).takeUnretainedValue()
    }

    // MARK: Reading

    private func readable() {
        guard let bufferevent else { return }
        if lingering || parsingEnded {
            let input = bufferevent_get_input(bufferevent)
            evbuffer_drain(input, evbuffer_get_length(input))
            return
        }
        processInput()
        flushOutput()
    }

    /// Parses what the input buffer holds, request after request.
    private func processInput() {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while let bufferevent, !parsingEnded {
            if slots.count >= Self.maxPipelined {
                readingPaused = true
                bufferevent_disable(bufferevent, Int16(EV_READ))
                return
            }
            let input = bufferevent_get_input(bufferevent)
            let length = evbuffer_get_length(input)
            guard length > seen, let start = evbuffer_pullup(input, -1) else { return }
            let (consumed, event) = parser.parse(UnsafeRawBufferPointer(start: start, count: length), from: seen)
            seen += consumed
            switch event {
            case .needMore:
                if !parser.isInHead {
                    evbuffer_drain(input, seen)
                    seen = 0
                }
                if parser.awaitsContinue && slots.isEmpty { sendContinue() }
                return
            case .complete(let request):
                evbuffer_drain(input, seen)
                seen = 0
                received(request)
            case .failed(let failure):
                evbuffer_drain(input, length)
                seen = 0
                failed(failure)
                return
            case .restart:
                seen = 0
                return
            case .unknownMethod(let name, let target):
                evbuffer_drain(input, length)
                seen = 0
                parsingEnded = true
                let slot = ReplySlot(
                    context: context, connection: self, omitsBody: false, directive: .close, lingers: true)
                slots.append(slot)
                slot.respond(context.unroutedMethod(name, target: target))
                return
            }
        }
    }

    private func received(_ request: ParsedRequest) {
        let closes = !request.keepAlive || context.isDraining
        if closes { parsingEnded = true }
        let slot = ReplySlot(
            context: context, connection: self, omitsBody: request.method == .HEAD,
            directive: closes ? .close : (request.isHTTP10 ? .keepAliveHTTP10 : .keepAlive))
        slots.append(slot)
        context.dispatch(request, to: slot, from: self)
    }

    private func failed(_ failure: HTTPRequestFailure) {
        parsingEnded = true
        context.logger.debug(
            "HTTP request refused",
            metadata: ["http.peer": "\(remoteAddress):\(remotePort)", "http.failure": "\(failure)"])
        let slot = ReplySlot(context: context, connection: self, omitsBody: false, directive: .close, lingers: true)
        slots.append(slot)
        slot.respond(failure.response)
    }

    private func sendContinue() {
        guard let bufferevent else { return }
        HTTPResponseSerializer.writeContinue(to: bufferevent_get_output(bufferevent))
        parser.continueSent()
        if !processing { flushOutput() }
    }

    // MARK: Writing

    /// Writes every reply that is ready and has no unanswered request before it.
    func writeReadyReplies() {
        guard let bufferevent else { return }
        let output = bufferevent_get_output(bufferevent)!
        while let first = slots.first, let response = first.response {
            slots.removeFirst()
            first.written()
            let closes = first.directive == .close || context.isDraining
            context.serializer.write(
                response, omitBody: first.omitsBody, connection: closes ? .close : first.directive, to: output)
            replyWritten = true
            if first.isDeferred {
                deferredAwaitingFlush += 1
                readTimeoutStale = true
            }
            if closes {
                closeWhenFlushed = true
                lingerWhenFlushed = lingerWhenFlushed || first.lingers
                parsingEnded = true
                // Requests pipelined after one that closes are never answered.
                abandonSlots()
                break
            }
        }
        if readingPaused && slots.count < Self.maxPipelined && !parsingEnded {
            readingPaused = false
            bufferevent_enable(bufferevent, Int16(EV_READ))
            processInput()
        }
        // Inside processInput() the read callback writes once, for every reply it produced.
        if !processing { flushOutput() }
    }

    /// Writes the output buffer to the socket now, from the callback that filled it. With no
    /// write event in between, a reply costs no `epoll_ctl` pair (the event on, then off) and no
    /// extra loop turn. What the socket does not take at once is left to the bufferevent: its
    /// write event, under the write timeout, then ``writeCompleted()``.
    private func flushOutput() {
        guard let bufferevent, !writing else { return }
        let output = bufferevent_get_output(bufferevent)
        guard evbuffer_get_length(output) > 0 else { return }
        // A bufferevent freezes the start of its output so that only it drains it; it thaws it
        // around its own writes, and so do we.
        evbuffer_unfreeze(output, 1)
        errno = 0
        let written = evbuffer_write(output, bufferevent_getfd(bufferevent))
        evbuffer_freeze(output, 1)
        if written < 0 {
            let error = errno
            guard error == EAGAIN || error == EWOULDBLOCK || error == EINTR else {
                close() // reset by the client, or another socket error
                return
            }
        }
        if evbuffer_get_length(output) == 0 {
            flushed()
        } else {
            writing = true
            bufferevent_enable(bufferevent, Int16(EV_WRITE))
        }
    }

    /// The bufferevent wrote what ``flushOutput()`` left.
    private func writeCompleted() {
        guard let bufferevent else { return }
        writing = false
        bufferevent_disable(bufferevent, Int16(EV_WRITE))
        flushed()
    }

    /// The output buffer was written to the socket.
    private func flushed() {
        guard let bufferevent else { return }
        for _ in 0..<deferredAwaitingFlush { context.replyFinished() }
        deferredAwaitingFlush = 0
        guard slots.isEmpty else { return }
        if closeWhenFlushed {
            let unread = evbuffer_get_length(bufferevent_get_input(bufferevent)) > 0
            if !peerFinished && (lingerWhenFlushed || unread) {
                linger()
            } else {
                close()
            }
            return
        }
        if replyWritten {
            replyWritten = false
            clockStart = .now
            if readTimeoutStale {
                readTimeoutStale = false
                // Restarts the read timeout: the time the handler took is not the client's.
                bufferevent_enable(bufferevent, Int16(EV_READ))
            }
        }
        if let deadline, !deadline.isArmed {
            // It fired while a reply was owed (and stood still): it runs again from here.
            let remaining = context.limits.requestDeadline - (ContinuousClock.now - clockStart)
            deadline.schedule(after: max(remaining, .zero))
        }
        if parser.awaitsContinue { sendContinue() }
    }

    /// Whether a reply is owed or being written: the client's clocks are stopped.
    private var replyPending: Bool {
        guard let bufferevent else { return false }
        return !slots.isEmpty || evbuffer_get_length(bufferevent_get_output(bufferevent)) > 0
    }

    // MARK: Events

    private func event(_ what: Int32) {
        guard let bufferevent else { return }
        if what & Int32(BEV_EVENT_EOF) != 0 {
            // The client sent everything it will send; it may still read the replies it is owed.
            peerFinished = true
            parsingEnded = true
            if lingering || !replyPending {
                close()
            } else {
                closeWhenFlushed = true
            }
        } else if what & Int32(BEV_EVENT_ERROR) != 0 {
            close()
        } else if what & Int32(BEV_EVENT_TIMEOUT) != 0 {
            if what & Int32(BEV_EVENT_READING) != 0 && !lingering && replyPending {
                // A handler is working or a reply is being written: not the client's time.
                bufferevent_enable(bufferevent, Int16(EV_READ))
                return
            }
            context.logger.debug(
                "HTTP connection closed: timed out",
                metadata: [
                    "http.peer": "\(remoteAddress):\(remotePort)", "http.read_timeout": "\(context.limits.readTimeout)",
                ])
            close()
        }
    }

    private func deadlinePassed() {
        guard bufferevent != nil else { return }
        if lingering {
            close()
            return
        }
        // Fired while a reply is owed or written: the clock is stopped; the flush re-arms it.
        guard !replyPending, !closeWhenFlushed else { return }
        let elapsed = ContinuousClock.now - clockStart
        if elapsed < context.limits.requestDeadline {
            // The clock restarted since the timer was armed.
            deadline?.schedule(after: context.limits.requestDeadline - elapsed)
            return
        }
        context.logger.debug(
            "HTTP connection closed: no whole request within the deadline",
            metadata: [
                "http.peer": "\(remoteAddress):\(remotePort)",
                "http.request_deadline": "\(context.limits.requestDeadline)",
            ])
        close()
    }

    // MARK: Closing

    /// Half-closes, then reads and drops input until the client closes (or the linger timeout).
    private func linger() {
        guard let bufferevent else { return }
        lingering = true
        let input = bufferevent_get_input(bufferevent)
        evbuffer_drain(input, evbuffer_get_length(input))
        _ = shutdown(bufferevent_getfd(bufferevent), Int32(SHUT_WR))
        deadline?.schedule(after: Self.lingerTimeout)
        bufferevent_enable(bufferevent, Int16(EV_READ))
    }

    /// Closes the socket now; replies not yet written are dropped. Idempotent.
    func close() {
        guard let bufferevent else { return }
        withExtendedLifetime(self) {
            self.bufferevent = nil
            deadline?.cancel()
            deadline = nil
            bufferevent_free(bufferevent)
            for _ in 0..<deferredAwaitingFlush { context.replyFinished() }
            deferredAwaitingFlush = 0
            abandonSlots()
            context.connectionClosed(self)
        }
    }

    private func abandonSlots() {
        let abandoned = slots
        slots = []
        for slot in abandoned { slot.abandon() }
    }
}
