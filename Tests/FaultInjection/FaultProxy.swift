import CLibEvent
import Foundation
import Synchronization

@testable public import ChatRuntime

/// A TCP proxy on 127.0.0.1 that sits between the service and a dependency (Redis, the
/// upstream API) and misbehaves on request: latency, dropped connections, a black hole, a reply
/// cut in the middle, a bandwidth limit (see ``FaultMode``), switched at run time.
///
/// Built on the project's own runtime: an ``EventLoop`` with a libevent `evconnlistener` and
/// one pair of bufferevents per connection. The actor runs on the loop's executor, so the C
/// callbacks enter it with `assumeIsolated`. A started proxy keeps itself alive until
/// ``close()``: libevent holds a pointer to it.
///
/// ```swift
/// let proxy = try await FaultProxy.start(loop: loop, targetPort: redis.port)
/// // point the service at proxy.port, then:
/// await proxy.setMode(.blackhole)
/// await proxy.setMode(.pass)
/// await proxy.close()
/// ```
public actor FaultProxy {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    /// Where connections are forwarded: 127.0.0.1:`targetPort`.
    public nonisolated let targetPort: Int
    private let loop: EventLoop
    private let boundPort = Atomic<Int>(0)
    private var listener: OpaquePointer?
    private var retainedWhileListening: Unmanaged<FaultProxy>?
    private var connections: [Int: FaultProxyConnection] = [:]
    private var nextConnectionID = 0
    /// The `ev_token_bucket_cfg` of ``FaultMode/bandwidth(bytesPerSecond:)``, shared by every
    /// connection while that mode is on.
    private var rateLimit: OpaquePointer?

    /// The current mode.
    public private(set) var mode: FaultMode = .pass
    /// Counts since the start.
    public private(set) var statistics = FaultProxyStatistics()

    /// The port the proxy listens on.
    public nonisolated var port: Int { boundPort.load(ordering: .acquiring) }

    /// Listens on a free port of 127.0.0.1 and forwards to 127.0.0.1:`targetPort`, in
    /// ``FaultMode/pass`` mode. The target need not be up: connections made while it is down are
    /// closed, as the target itself would refuse them.
    public static func start(loop: EventLoop, targetPort: Int) async throws -> FaultProxy {
        let proxy = FaultProxy(loop: loop, targetPort: targetPort)
        try await proxy.listen()
        return proxy
    }

    private init(loop: EventLoop, targetPort: Int) {
        self.loop = loop
        self.targetPort = targetPort
        self.unownedExecutor = loop.asUnownedSerialExecutor()
    }

    /// Switches to `mode`; it applies at once to open connections and new ones.
    public func setMode(_ newMode: FaultMode) {
        mode = newMode
        installRateLimit(for: newMode)
        switch newMode {
        case .drop:
            for id in Array(connections.keys) {
                statistics.resets += 1
                closeConnection(id, reset: true)
            }
        case .pass, .latency, .bandwidth, .cutReply:
            // Bytes may wait in input buffers since a black hole ended; move them on.
            for id in Array(connections.keys) {
                readable(connectionID: id, side: .client)
                readable(connectionID: id, side: .target)
            }
        case .blackhole:
            break
        }
    }

    /// Stops listening and closes every connection. Idempotent.
    public func close() {
        if let listener { evconnlistener_free(listener) }
        listener = nil
        for id in Array(connections.keys) { closeConnection(id, reset: false) }
        installRateLimit(for: .pass)
        retainedWhileListening?.release()
        retainedWhileListening = nil
    }

    // MARK: Listening

    private func listen() throws {
        let retained = Unmanaged.passRetained(self)
        var address = sockaddr_in.loopback(port: 0)
        let flags = UInt32(LEV_OPT_CLOSE_ON_FREE) | UInt32(LEV_OPT_REUSEABLE) | UInt32(LEV_OPT_CLOSE_ON_EXEC)
        let created = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                evconnlistener_new_bind(
                    loop.base,
                    { _, socket, _, _, context in
                        guard let context else { return }
                        let proxy = Unmanaged<FaultProxy>.fromOpaque(context).takeUnretainedValue()
                        proxy.assumeIsolated { $0.accept(socket) }
                    },
                    retained.toOpaque(), flags, -1, $0, Int32(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard let created else {
            retained.release()
            throw FaultProxyError(message: "cannot listen on 127.0.0.1: \(String(cString: strerror(errno)))")
        }
        listener = created
        retainedWhileListening = retained
        boundPort.store(Self.localPort(of: evconnlistener_get_fd(created)), ordering: .releasing)
    }

    private func accept(_ socket: Int32) {
        statistics.accepted += 1
        if mode == .drop {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            Glibc.close(socket)
            statistics.resets += 1
            return
        }
        nextConnectionID += 1
        guard
            let connection = FaultProxyConnection(
                id: nextConnectionID, clientSocket: socket, targetPort: targetPort, proxy: self, loop: loop)
        else {
            statistics.targetConnectFailures += 1
            return
        }
        connection.applyRateLimit(rateLimit)
        connections[connection.id] = connection
        statistics.open = connections.count
    }

    // MARK: Connection events (C callbacks, on the loop)

    /// Bytes arrived from `side`.
    func readable(connectionID: Int, side: FaultProxySide) {
        guard let connection = connections[connectionID], connection.pendingInput(from: side) > 0 else { return }
        switch mode {
        case .drop:
            // Unreachable: dropping closes every connection.
            closeConnection(connectionID, reset: true)
        case .blackhole:
            statistics.bytesBlackholed += connection.discardInput(from: side)
        case .pass, .bandwidth:
            count(connection.forwardAll(from: side), from: side)
        case .latency(let delay):
            let bytes = connection.take(from: side, upTo: .max)
            connection.delay(bytes, to: side.other, by: delay)
            count(bytes.count, from: side)
        case .cutReply(let afterBytes):
            guard side == .target else {
                count(connection.forwardAll(from: side), from: side)
                return
            }
            let bytes = connection.take(from: .target, upTo: max(0, afterBytes))
            connection.discardInput(from: .target)
            connection.write(bytes, to: .client)
            count(bytes.count, from: .target)
            statistics.cuts += 1
            mode = .pass
            connection.closeSideAndFlushOther(.target)
            closeIfFlushed(connection)
        }
    }

    /// `side` wrote everything it had.
    func drained(connectionID: Int, side: FaultProxySide) {
        guard let connection = connections[connectionID] else { return }
        closeIfFlushed(connection)
    }

    /// A connect result, EOF or error on `side`.
    func event(connectionID: Int, side: FaultProxySide, events: Int32) {
        guard let connection = connections[connectionID] else { return }
        if events & Int32(BEV_EVENT_CONNECTED) != 0 {
            connection.targetConnected = true
            return
        }
        guard events & (Int32(BEV_EVENT_EOF) | Int32(BEV_EVENT_ERROR) | Int32(BEV_EVENT_TIMEOUT)) != 0 else { return }
        if side == .target, !connection.targetConnected {
            statistics.targetConnectFailures += 1
        }
        // What was read before the end still goes on (unless the mode swallows it).
        readable(connectionID: connectionID, side: side)
        guard connections[connectionID] != nil else { return }
        connection.closeSideAndFlushOther(side)
        closeIfFlushed(connection)
    }

    /// A delayed chunk of `side`'s direction is due.
    func delayedChunksDue(connectionID: Int, side: FaultProxySide) {
        guard let connection = connections[connectionID] else { return }
        connection.deliverDueChunks(to: side)
        closeIfFlushed(connection)
    }

    // MARK: Helpers

    private func count(_ bytes: Int, from side: FaultProxySide) {
        if side == .client { statistics.bytesToTarget += bytes } else { statistics.bytesToClients += bytes }
    }

    private func closeIfFlushed(_ connection: FaultProxyConnection) {
        guard connection.closingAfterFlush else { return }
        let stillOpen = [FaultProxySide.client, .target].filter { connection.isOpen($0) }
        guard stillOpen.allSatisfy({ connection.hasFlushed($0) }) else { return }
        closeConnection(connection.id, reset: false)
    }

    private func closeConnection(_ id: Int, reset: Bool) {
        guard let connection = connections.removeValue(forKey: id) else { return }
        connection.free(reset: reset)
        statistics.open = connections.count
    }

    private func installRateLimit(for mode: FaultMode) {
        let previous = rateLimit
        rateLimit = nil
        if case .bandwidth(let bytesPerSecond) = mode {
            // Ticks of 100 ms: the drip is smooth rather than one burst a second.
            var tick = timeval(tv_sec: 0, tv_usec: 100_000)
            let perTick = max(1, bytesPerSecond / 10)
            rateLimit = ev_token_bucket_cfg_new(perTick, perTick, perTick, perTick, &tick)
        }
        for connection in connections.values { connection.applyRateLimit(rateLimit) }
        // Only now unused by every connection.
        if let previous { ev_token_bucket_cfg_free(previous) }
    }

    private static func localPort(of socket: Int32) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return result == 0 ? Int(UInt16(bigEndian: address.sin_port)) : 0
    }
}

/// The proxy could not be set up.
public struct FaultProxyError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension sockaddr_in {
    /// `127.0.0.1:port`.
    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
