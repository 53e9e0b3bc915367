import Foundation

/// A tiny blocking-socket HTTP/1.1 client that sends raw bytes, for tests that need what a
/// well-behaved client never does: malformed requests, half requests, vanishing mid-request.
///
/// Every wait is bounded by a deadline. Use it from ``offloadBlocking(_:)`` so the blocking
/// calls stay off the cooperative thread pool.
public final class RawHTTPConnection: @unchecked Sendable {
    // @unchecked Sendable: a test drives one connection from one thread at a time.
    private var socket: Int32
    private var buffer: [UInt8] = []
    private let timeout: Duration

    /// Connects to `127.0.0.1:port`; every later read waits at most `timeout`.
    public init(port: Int, timeout: Duration = .seconds(10)) throws {
        self.timeout = timeout
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw RawSocketError.system("socket", errno) }
        var address = sockaddr_in.loopback(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let error = errno
            Glibc.close(socket)
            // deinit runs for an initializer that throws once every property is set: without
            // this it closed the descriptor a second time, by then maybe another test's socket.
            socket = -1
            throw RawSocketError.system("connect", error)
        }
    }

    deinit { close() }

    public func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard written > 0 else { throw RawSocketError.system("send", errno) }
            offset += written
        }
    }

    /// Reads one response; its body by `Content-Length`, else up to the close. `hasBody: false`
    /// for the answer to a HEAD request.
    public func readResponse(hasBody: Bool = true) throws -> RawHTTPResponse {
        let deadline = ContinuousClock.now + timeout
        var headEnd: Int?
        while headEnd == nil {
            headEnd = buffer.firstRange(of: Array("\r\n\r\n".utf8))?.upperBound
            if headEnd == nil {
                guard try fill(until: deadline) else {
                    throw RawSocketError.closedEarly(String(decoding: buffer, as: UTF8.self))
                }
            }
        }
        let head = String(decoding: buffer[..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd!)
        var lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let statusParts = lines.removeFirst().split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw RawSocketError.malformed(head) }
        let headers: [(String, String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let response = RawHTTPResponse(status: status, headers: headers, body: [])
        guard hasBody else { return response }
        var body: [UInt8]
        if let length = response.header("Content-Length").flatMap(Int.init) {
            while buffer.count < length {
                guard try fill(until: deadline) else { throw RawSocketError.closedEarly("body") }
            }
            body = Array(buffer[..<length])
            buffer.removeFirst(length)
        } else {
            while try fill(until: deadline) {}
            body = buffer
            buffer = []
        }
        return RawHTTPResponse(status: status, headers: headers, body: body)
    }

    /// Waits up to `limit` for the peer to close; returns true when it did. Bytes that arrive
    /// meanwhile are kept for ``readResponse(hasBody:)``.
    public func waitForClose(within limit: Duration) -> Bool {
        let deadline = ContinuousClock.now + limit
        while true {
            do {
                if try !fill(until: deadline) { return true }
            } catch RawSocketError.timedOut {
                return false
            } catch {
                return true // reset by peer
            }
        }
    }

    /// Closes the socket; with `reset`, with an RST instead of a FIN.
    public func close(reset: Bool = false) {
        guard socket >= 0 else { return }
        if reset {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        Glibc.close(socket)
        socket = -1
    }

    /// Reads once into the buffer; false at EOF. Throws on timeout or a socket error.
    private func fill(until deadline: ContinuousClock.Instant) throws -> Bool {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { throw RawSocketError.timedOut }
        var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(
            max(1, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
        let ready = poll(&poller, 1, milliseconds)
        guard ready > 0 else {
            if ready < 0 && errno == EINTR { return true }
            throw RawSocketError.timedOut
        }
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        if count == 0 { return false }
        guard count > 0 else { throw RawSocketError.system("recv", errno) }
        buffer.append(contentsOf: chunk[..<count])
        return true
    }
}

/// A response read by ``RawHTTPConnection``.
public struct RawHTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    /// The first header named `name`, any case.
    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

public enum RawSocketError: Error, Equatable {
    case system(String, Int32)
    case timedOut
    case closedEarly(String)
    case malformed(String)
}

/// Runs blocking work on a thread of its own and awaits it, leaving the cooperative pool free.
public func offloadBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.start()
    }
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
