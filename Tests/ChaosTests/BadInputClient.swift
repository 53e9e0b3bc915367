import Foundation
import TestSupport

/// Sends one raw request on a fresh connection and reports what the server did: answered with
/// a status, closed, or neither within the timeout. Blocking sockets; closes with an RST so a
/// hundred thousand connections leave no TIME_WAIT behind.
enum BadInputClient {
    enum Outcome: Sendable, Hashable {
        case status(Int)
        /// Closed (FIN or RST) before a status line came.
        case closed
        /// Neither an answer nor a close within the timeout: a hang.
        case silent
        case connectFailed(Int32)
    }

    static func exchange(_ request: BadRequest, port: Int, timeout: Duration) -> Outcome {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { return .connectFailed(errno) }
        defer {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            Glibc.close(socket)
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return .connectFailed(errno) }
        var sendTimeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))

        // The server may answer and close before the whole request is sent (413, 400): a
        // failed send is fine, what it answered is read below.
        var offset = 0
        while offset < request.bytes.count {
            let sent = request.bytes[offset...].withUnsafeBytes {
                Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent <= 0 { break }
            offset += sent
        }
        if request.halfClose { shutdown(socket, Int32(SHUT_WR)) }

        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        while true {
            if let status = statusCode(in: received) { return .status(status) }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return .silent }
            var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(
                max(1, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { return .silent }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return statusCode(in: received).map(Outcome.status) ?? .closed }
            received += chunk[..<count]
        }
    }

    /// The status of a complete status line at the start of `bytes`.
    private static func statusCode(in bytes: [UInt8]) -> Int? {
        guard let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = String(decoding: bytes[..<lineEnd], as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/") else { return -1 }
        return Int(parts[1]) ?? -1
    }
}
