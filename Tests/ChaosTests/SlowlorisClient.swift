import Foundation
import TestSupport

/// A slowloris client: opens a connection, sends the start of a request, then drips one more
/// header byte every `interval` and never finishes. Reports how long the server kept it open.
enum SlowlorisClient {
    struct Result: Sendable {
        /// When the server closed the connection (or answered), from the first byte; nil when it
        /// was still open at `limit`.
        var closedAfter: Duration?
        /// A status the server answered with before closing, if any.
        var status: Int?
    }

    static func drip(port: Int, interval: Duration, limit: Duration) -> Result {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { return Result(closedAfter: .zero, status: nil) }
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
        guard connected == 0 else { return Result(closedAfter: .zero, status: nil) }

        let started = ContinuousClock.now
        var pending = Array("GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
        var received: [UInt8] = []
        while ContinuousClock.now - started < limit {
            if !pending.isEmpty {
                let sent = pending.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent <= 0 { return Result(closedAfter: ContinuousClock.now - started, status: status(in: received)) }
                pending = []
            }
            // Wait for the next drip, watching for the server closing meanwhile.
            let nextDrip = ContinuousClock.now + interval
            while ContinuousClock.now < nextDrip {
                let remaining = nextDrip - ContinuousClock.now
                var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
                let milliseconds = Int32(
                    max(
                        1,
                        remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
                guard poll(&poller, 1, milliseconds) > 0 else { continue }
                var chunk = [UInt8](repeating: 0, count: 4096)
                let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
                if count <= 0 {
                    return Result(closedAfter: ContinuousClock.now - started, status: status(in: received))
                }
                received += chunk[..<count]
            }
            pending = [UInt8(ascii: "a")]
        }
        return Result(closedAfter: nil, status: status(in: received))
    }

    private static func status(in bytes: [UInt8]) -> Int? {
        let text = String(decoding: bytes.prefix(64), as: UTF8.self)
        let parts = text.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/") else { return nil }
        return Int(parts[1])
    }
}
