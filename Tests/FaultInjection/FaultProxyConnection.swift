import CLibEvent
import Foundation

@testable import ChatRuntime

/// One end of a proxied connection: the client that connected to the proxy, or the target the
/// proxy connected to for it.
enum FaultProxySide: Sendable, Hashable {
    case client, target

    var other: FaultProxySide { self == .client ? .target : .client }
}

/// What the C callbacks of one bufferevent carry: which proxy, connection and side they are
/// about. Handed to libevent unretained; the connection keeps it alive until both of its
/// bufferevents are freed, after which libevent calls nothing with it.
final class FaultProxyCallbackContext: Sendable {
    let proxy: FaultProxy
    let connectionID: Int
    let side: FaultProxySide

    init(proxy: FaultProxy, connectionID: Int, side: FaultProxySide) {
        self.proxy = proxy
        self.connectionID = connectionID
        self.side = side
    }
}

/// A client connection and the proxy's connection to the target for it: two libevent
/// bufferevents and, for ``FaultMode/latency(_:)``, the chunks waiting to be delivered.
///
/// All the unsafe libevent code of the proxy is here. Owned by ``FaultProxy`` and used only on
/// its loop thread (the proxy's isolation); it is not Sendable.
final class FaultProxyConnection {
    let id: Int
    private let loop: EventLoop
    private var client: OpaquePointer?
    private var target: OpaquePointer?
    private let contexts: [FaultProxySide: FaultProxyCallbackContext]
    private var delayed: [FaultProxySide: [(due: ContinuousClock.Instant, bytes: [UInt8])]] = [
        .client: [], .target: [],
    ]
    private var delayTimers: [FaultProxySide: LoopTimer] = [:]
    /// One side is gone: the other is closed once what it still has to write is written.
    private(set) var closingAfterFlush = false
    /// The connection to the target was established (a failure before is a refused connect).
    var targetConnected = false

    /// Wraps the accepted `clientSocket` and starts connecting to 127.0.0.1:`targetPort`.
    /// Returns nil (and closes the socket) when libevent cannot set the connection up.
    init?(id: Int, clientSocket: Int32, targetPort: Int, proxy: FaultProxy, loop: EventLoop) {
        loop.preconditionInLoop()
        self.id = id
        self.loop = loop
        contexts = [
            .client: FaultProxyCallbackContext(proxy: proxy, connectionID: id, side: .client),
            .target: FaultProxyCallbackContext(proxy: proxy, connectionID: id, side: .target),
        ]
        let closeOnFree = Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)
        guard let client = bufferevent_socket_new(loop.base, clientSocket, closeOnFree) else {
            Glibc.close(clientSocket)
            return nil
        }
        self.client = client
        let targetSocket = socket(
            AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard targetSocket >= 0, let target = bufferevent_socket_new(loop.base, targetSocket, closeOnFree) else {
            if targetSocket >= 0 { Glibc.close(targetSocket) }
            bufferevent_free(client)
            self.client = nil
            return nil
        }
        self.target = target
        install(client, side: .client)
        install(target, side: .target)
        var address = sockaddr_in.loopback(port: targetPort)
        // A refused connect is reported later through the event callback (BEV_EVENT_ERROR).
        let started = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bufferevent_socket_connect(target, $0, Int32(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard started == 0 else {
            free(reset: false)
            return nil
        }
    }

    deinit {
        // The proxy frees every connection it drops; this only guards against a leak.
        if client != nil || target != nil { free(reset: false) }
    }

    var isClosed: Bool { client == nil && target == nil }

    func isOpen(_ side: FaultProxySide) -> Bool { bufferevent(side) != nil }

    // MARK: Moving bytes

    /// Bytes read from `side` and not yet handled.
    func pendingInput(from side: FaultProxySide) -> Int {
        guard let event = bufferevent(side), let input = bufferevent_get_input(event) else { return 0 }
        return evbuffer_get_length(input)
    }

    /// Moves everything read from `side` to the other side's output (behind any delayed
    /// chunks, so order is kept); returns the byte count.
    @discardableResult
    func forwardAll(from side: FaultProxySide) -> Int {
        guard hasNoDelayedChunks(to: side.other) else {
            let bytes = take(from: side, upTo: .max)
            delay(bytes, to: side.other, by: .zero)
            return bytes.count
        }
        guard let source = bufferevent(side), let input = bufferevent_get_input(source) else { return 0 }
        let count = evbuffer_get_length(input)
        guard let destination = bufferevent(side.other), let output = bufferevent_get_output(destination) else {
            evbuffer_drain(input, count)
            return 0
        }
        evbuffer_add_buffer(output, input)
        return count
    }

    /// Removes and returns up to `limit` bytes read from `side`.
    func take(from side: FaultProxySide, upTo limit: Int) -> [UInt8] {
        guard let event = bufferevent(side), let input = bufferevent_get_input(event) else { return [] }
        let count = min(limit, evbuffer_get_length(input))
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        let removed = bytes.withUnsafeMutableBytes { evbuffer_remove(input, $0.baseAddress, count) }
        return Array(bytes.prefix(max(0, Int(removed))))
    }

    /// Throws away everything read from `side`; returns the byte count.
    @discardableResult
    func discardInput(from side: FaultProxySide) -> Int {
        guard let event = bufferevent(side), let input = bufferevent_get_input(event) else { return 0 }
        let count = evbuffer_get_length(input)
        evbuffer_drain(input, count)
        return count
    }

    /// Queues `bytes` for writing to `side`.
    func write(_ bytes: [UInt8], to side: FaultProxySide) {
        guard !bytes.isEmpty, let event = bufferevent(side) else { return }
        bytes.withUnsafeBytes { _ = bufferevent_write(event, $0.baseAddress, $0.count) }
    }

    /// Writes `bytes` to `side` once `delay` has passed, after the chunks queued before.
    func delay(_ bytes: [UInt8], to side: FaultProxySide, by delay: Duration) {
        guard !bytes.isEmpty else { return }
        delayed[side, default: []].append((ContinuousClock.now + delay, bytes))
        if delayed[side]?.count == 1 { armDelayTimer(for: side) }
    }

    /// Writes the delayed chunks to `side` that are due, and re-arms for the next one.
    func deliverDueChunks(to side: FaultProxySide) {
        let now = ContinuousClock.now
        while let first = delayed[side]?.first, first.due <= now {
            delayed[side]?.removeFirst()
            write(first.bytes, to: side)
        }
        if delayed[side]?.isEmpty == false { armDelayTimer(for: side) }
    }

    func hasNoDelayedChunks(to side: FaultProxySide) -> Bool { delayed[side]?.isEmpty ?? true }

    /// Whether `side` has nothing left to write: no delayed chunk and an empty output buffer.
    func hasFlushed(_ side: FaultProxySide) -> Bool {
        guard hasNoDelayedChunks(to: side) else { return false }
        guard let event = bufferevent(side), let output = bufferevent_get_output(event) else { return true }
        return evbuffer_get_length(output) == 0
    }

    // MARK: Limits and closing

    /// Applies a token-bucket configuration (nil: none) to both sides. The configuration must
    /// outlive its use: the proxy frees it only after removing it from every connection.
    func applyRateLimit(_ configuration: OpaquePointer?) {
        for event in [client, target] {
            if let event { _ = bufferevent_set_rate_limit(event, configuration) }
        }
    }

    /// Closes `side` now; the other side stays open until ``hasFlushed(_:)``, then the proxy
    /// closes it. Reading from the other side stops: there is nowhere to send it.
    func closeSideAndFlushOther(_ side: FaultProxySide) {
        freeSide(side, reset: false)
        closingAfterFlush = true
        if let other = bufferevent(side.other) { _ = bufferevent_disable(other, Int16(EV_READ)) }
    }

    /// Closes both sides now; with `reset`, with an RST instead of a FIN.
    func free(reset: Bool) {
        freeSide(.client, reset: reset)
        freeSide(.target, reset: reset)
        for timer in delayTimers.values { timer.cancel() }
        delayTimers = [:]
        delayed = [.client: [], .target: []]
    }

    // MARK: Private

    private func bufferevent(_ side: FaultProxySide) -> OpaquePointer? {
        side == .client ? client : target
    }

    private func freeSide(_ side: FaultProxySide, reset: Bool) {
        guard let event = bufferevent(side) else { return }
        if reset {
            let socket = bufferevent_getfd(event)
            if socket >= 0 {
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            }
        }
        // Safe from inside this bufferevent's own callback: libevent clears the callbacks and
        // defers the actual free until the callback returns.
        bufferevent_free(event)
        if side == .client { client = nil } else { target = nil }
    }

    private func armDelayTimer(for side: FaultProxySide) {
        guard let due = delayed[side]?.first?.due else { return }
        let timer =
            delayTimers[side]
            ?? {
                let context = contexts[side]!
                let timer = LoopTimer(loop: loop) {
                    context.proxy.assumeIsolated {
                        $0.delayedChunksDue(connectionID: context.connectionID, side: context.side)
                    }
                }
                delayTimers[side] = timer
                return timer
            }()
        timer.schedule(after: due - ContinuousClock.now)
    }

    private func install(_ event: OpaquePointer, side: FaultProxySide) {
        let context = Unmanaged.passUnretained(contexts[side]!).toOpaque()
        bufferevent_setcb(
            event,
            { _, context in
                guard let context else { return }
                let box = Unmanaged<FaultProxyCallbackContext>.fromOpaque(context).takeUnretainedValue()
                box.proxy.assumeIsolated { $0.readable(connectionID: box.connectionID, side: box.side) }
            },
            { _, context in
                guard let context else { return }
                let box = Unmanaged<FaultProxyCallbackContext>.fromOpaque(context).takeUnretainedValue()
                box.proxy.assumeIsolated { $0.drained(connectionID: box.connectionID, side: box.side) }
            },
            { _, what, context in
                guard let context else { return }
                let box = Unmanaged<FaultProxyCallbackContext>.fromOpaque(context).takeUnretainedValue()
                let events = Int32(what)
                box.proxy.assumeIsolated { $0.event(connectionID: box.connectionID, side: box.side, events: events) }
            },
            context)
        _ = bufferevent_enable(event, Int16(EV_READ | EV_WRITE))
    }
}
