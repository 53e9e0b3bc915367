import ChatRuntime
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A DNS server on a UDP socket on 127.0.0.1, for tests of name resolution: it answers A (or,
/// for an IPv6 address, AAAA) queries for the names it is given and NXDOMAIN for others, or, while ``isSilent``, swallows
/// every query (a resolver that never answers). ``resolvConf`` is a file naming it, for an
/// ``EventLoop``'s resolver or the service's DNS_RESOLV_CONF. Call ``stop()`` when done: the
/// serving thread keeps the server alive until then.
public final class FakeNameserver: Sendable {
    public let port: Int
    /// `nameserver 127.0.0.1:<port>` with evdns' retry options; removed with the server.
    public let resolvConf: String
    private let descriptor: Int32
    private let state: AnnotatedMutex<State>

    private struct State {
        var addresses: [String: String]
        var silent: Bool
        var queries: [String] = []
        var stopped = false
    }

    /// - Parameters:
    ///   - addresses: name (lower case, no trailing dot) → the IPv4 or IPv6 address answered
    ///     for it (as an A or an AAAA record).
    ///   - silent: swallow every query.
    ///   - queryTimeoutSeconds: resolv.conf's `timeout:` (one attempt): how long evdns waits
    ///     for an answer before it gives up by itself.
    public init(addresses: [String: String] = [:], silent: Bool = false, queryTimeoutSeconds: Int = 1) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(descriptor >= 0, "socket() failed: errno \(errno)")
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        precondition(bound == 0, "bind failed: errno \(errno)")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        // recvfrom wakes every 100 ms, so the thread notices ``stop()``.
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
        state = AnnotatedMutex(State(addresses: addresses, silent: silent))
        resolvConf =
            FileManager.default.temporaryDirectory.appendingPathComponent("resolv-\(UUID().uuidString).conf").path
        // One try per query: a silent server costs a lookup that long in evdns' own accounting;
        // callers bound it further with their own timeouts.
        try "nameserver 127.0.0.1:\(port)\noptions timeout:\(queryTimeoutSeconds) attempts:1\n"
            .write(toFile: resolvConf, atomically: true, encoding: .utf8)
        let thread = Thread { [self] in serve() }
        thread.name = "fake-nameserver"
        thread.start()
    }

    /// Stops answering and closes the socket (once the serving thread notices).
    public func stop() {
        state.withLock { $0.stopped = true }
        try? FileManager.default.removeItem(atPath: resolvConf)
    }

    /// Swallow every query from now on (true), or answer again (false).
    public func setSilent(_ silent: Bool) {
        state.withLock { $0.silent = silent }
    }

    /// Answers `address` for `name` from now on; nil answers NXDOMAIN.
    public func setAddress(_ address: String?, for name: String) {
        state.withLock { $0.addresses[name.lowercased()] = address }
    }

    /// The names asked so far (one entry per query, A and AAAA alike), in order.
    public var queries: [String] { state.withLock { $0.queries } }

    private func serve() {
        var buffer = [UInt8](repeating: 0, count: 512)
        while !state.withLock({ $0.stopped }) {
            var peer = sockaddr_in()
            var peerLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            let count = withUnsafeMutablePointer(to: &peer) { peerPointer in
                peerPointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(descriptor, &buffer, buffer.count, 0, $0, &peerLength)
                }
            }
            guard count > 12 else { continue }
            let query = Array(buffer[0..<count])
            guard let question = Self.question(in: query) else { continue }
            let reply: [UInt8]? = state.withLock { state in
                state.queries.append(question.name)
                if state.silent { return nil }
                return Self.answer(query, question: question, address: state.addresses[question.name])
            }
            guard let reply else { continue }
            _ = withUnsafePointer(to: &peer) { peerPointer in
                peerPointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, reply, reply.count, 0, $0, peerLength)
                }
            }
        }
        close(descriptor)
    }

    private struct Question {
        var name: String
        var type: UInt16
        /// Where the question section ends in the query.
        var end: Int
    }

    private static func question(in query: [UInt8]) -> Question? {
        var offset = 12
        var labels: [String] = []
        while offset < query.count {
            let length = Int(query[offset])
            offset += 1
            if length == 0 { break }
            guard length < 64, offset + length <= query.count else { return nil }
            labels.append(String(decoding: query[offset..<(offset + length)], as: UTF8.self))
            offset += length
        }
        guard offset + 4 <= query.count else { return nil }
        let type = UInt16(query[offset]) << 8 | UInt16(query[offset + 1])
        return Question(name: labels.joined(separator: ".").lowercased(), type: type, end: offset + 4)
    }

    /// The reply to `query`: the A record of an IPv4 `address` (A queries) or the AAAA record of
    /// an IPv6 one (AAAA queries), no record (the other type, for a known name), or NXDOMAIN (an
    /// unknown name).
    private static func answer(_ query: [UInt8], question: Question, address: String?) -> [UInt8] {
        var reply = Array(query[0..<question.end])
        let isIPv6 = address?.contains(":") == true
        let answers = address != nil && question.type == (isIPv6 ? 28 : 1) ? 1 : 0
        reply[2] = 0x81 // response, recursion desired
        reply[3] = address == nil ? 0x83 : 0x80 // recursion available; NXDOMAIN or NOERROR
        reply[6] = 0
        reply[7] = UInt8(answers)
        for index in 8..<12 { reply[index] = 0 }
        if answers == 1, let address, isIPv6 {
            var raw = in6_addr()
            inet_pton(AF_INET6, address, &raw)
            let bytes = withUnsafeBytes(of: raw) { Array($0) }
            reply += [0xC0, 0x0C, 0x00, 0x1C, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10] + bytes
        } else if answers == 1, let address {
            var raw = in_addr()
            inet_pton(AF_INET, address, &raw)
            let bytes = withUnsafeBytes(of: raw.s_addr) { Array($0) }
            reply += [0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04] + bytes
        }
        return reply
    }
}
