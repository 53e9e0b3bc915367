import ChatRuntime
import Foundation

/// A loopback TCP server that misbehaves on purpose, for HTTP client tests: it never answers,
/// or closes mid-response. Blocking sockets on threads of its own; every wait is bounded.
public final class ScriptedTCPServer: Sendable {
    public enum Behavior: Sendable {
        /// Reads requests and never answers; the connection stays open until ``stop()``.
        case neverAnswer
        /// Reads one request head, writes `bytes`, and closes the connection.
        case answerThenClose(String)
    }

    public let port: Int
    private let listener: Int32
    private let behavior: Behavior
    private let state = AnnotatedMutex(State())

    private struct State {
        var stopped = false
        var accepted = 0
        var requestHeads = 0
        var firstChunks: [[UInt8]] = []
    }

    /// Binds `127.0.0.1` on a free port and starts accepting.
    public init(behavior: Behavior) throws {
        self.behavior = behavior
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw RawSocketError.system("socket", errno) }
        var reuse: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(socket, 64) == 0, let port = Self.localPort(of: socket) else {
            let error = errno
            Glibc.close(socket)
            throw RawSocketError.system("bind/listen", error)
        }
        self.listener = socket
        self.port = port
        Thread { [self] in acceptLoop() }.start()
    }

    deinit { stop() }

    /// Connections accepted so far.
    public var acceptedConnections: Int { state.withLock { $0.accepted } }
    /// Request heads read so far, over all connections.
    public var requestsSeen: Int { state.withLock { $0.requestHeads } }

    /// The first bytes each connection sent (one read), in accept order: what a client says
    /// before any answer, such as a TLS ClientHello.
    public var firstChunks: [[UInt8]] { state.withLock { $0.firstChunks } }

    /// Stops accepting and closes every connection within about 50 ms. Idempotent.
    public func stop() {
        state.withLock { $0.stopped = true }
    }

    /// A loopback port that nothing listens on (bound, then released).
    public static func unusedPort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(socket) }
        var address = sockaddr_in.loopback(port: 0)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard let port = localPort(of: socket) else { throw RawSocketError.system("getsockname", errno) }
        return port
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    private func acceptLoop() {
        defer { Glibc.close(listener) }
        while !isStopped {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            state.withLock { $0.accepted += 1 }
            Thread { [self] in serve(connection) }.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer { Glibc.close(connection) }
        var received: [UInt8] = []
        var sawBytes = false
        let headEnd = Array("\r\n\r\n".utf8)
        while !isStopped {
            var poller = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            if received.isEmpty && !sawBytes {
                sawBytes = true
                state.withLock { $0.firstChunks.append(Array(chunk[..<count])) }
            }
            received.append(contentsOf: chunk[..<count])
            while let head = received.firstRange(of: headEnd) {
                received.removeSubrange(..<head.upperBound)
                state.withLock { $0.requestHeads += 1 }
                switch behavior {
                case .neverAnswer:
                    break
                case .answerThenClose(let text):
                    let bytes = Array(text.utf8)
                    _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    return
                }
            }
        }
    }

    private static func localPort(of socket: Int32) -> Int? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return result == 0 ? Int(UInt16(bigEndian: address.sin_port)) : nil
    }
}
