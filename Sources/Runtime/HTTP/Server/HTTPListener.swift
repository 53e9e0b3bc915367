import CLibEvent
import Foundation

/// A listening TCP socket on an ``EventLoop`` (libevent's `evconnlistener`): hands every
/// accepted socket, non-blocking, with its peer's address, to `onAccept` on the loop thread.
final class HTTPListener {
    /// The accepted socket, and the peer's address and port.
    typealias AcceptHandler = (Int32, String, Int) -> Void

    /// The bound port (the one picked when asked for port 0).
    let port: Int
    private var listener: OpaquePointer?
    private let onAccept: AcceptHandler
    /// Held while listening: the C callback's context.
    private var retainedWhileOpen: Unmanaged<HTTPListener>?

    /// Binds `host:port` (a numeric address or a name, resolved as evhttp did: with
    /// `getaddrinfo`, before the loop serves anything) and listens.
    init(loop: EventLoop, host: String, port: Int, onAccept: @escaping AcceptHandler) throws(HTTPServerError) {
        _ = Self.brokenPipeIgnored
        self.onAccept = onAccept
        let socket = try Self.bind(host: host, port: port)
        self.port = Self.localPort(of: socket) ?? port
        let context = Unmanaged.passRetained(self)
        let flags = UInt32(LEV_OPT_CLOSE_ON_FREE) | UInt32(LEV_OPT_CLOSE_ON_EXEC)
        guard
            let listener = evconnlistener_new(
                loop.base,
                { _, socket, address, length, context in
                    guard let context else { return }
                    let listener = Unmanaged<HTTPListener>.fromOpaque(context).takeUnretainedValue()
                    let (host, port) = HTTPListener.describe(address, length: length)
                    listener.onAccept(socket, host, port)
                }, context.toOpaque(), flags, Self.backlog, socket)
        else {
            let reason = String(cString: strerror(errno))
            Glibc.close(socket)
            context.release()
            throw HTTPServerError(code: .bindFailed, message: "cannot listen on \(host):\(port): \(reason)")
        }
        self.listener = listener
        retainedWhileOpen = context
    }

    /// libevent writes replies with `writev`, which raises SIGPIPE on a socket the client has
    /// reset, and SIGPIPE's default action ends the process. Linux has no per-socket opt-out
    /// (`SO_NOSIGPIPE`), so, as nginx and webdis do, the process ignores it; the write then
    /// fails with EPIPE and the connection closes.
    private static let brokenPipeIgnored: Void = {
        _ = signal(SIGPIPE, SIG_IGN)
    }()

    /// Pending connections the kernel queues before `accept`, as nginx's default.
    private static let backlog: Int32 = 511

    /// Stops listening and closes the socket. Idempotent.
    func close() {
        if let listener { evconnlistener_free(listener) }
        listener = nil
        retainedWhileOpen?.release()
        retainedWhileOpen = nil
    }

    // MARK: Helpers

    private static func bind(host: String, port: Int) throws(HTTPServerError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var results: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &results)
        guard resolved == 0, let address = results else {
            let reason = String(cString: gai_strerror(resolved))
            throw HTTPServerError(code: .bindFailed, message: "cannot resolve \(host): \(reason)")
        }
        defer { freeaddrinfo(results) }
        let socket = Glibc.socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
        guard socket >= 0 else {
            throw HTTPServerError(code: .setupFailed, message: "socket failed: \(String(cString: strerror(errno)))")
        }
        // SO_REUSEADDR: a restart binds while old connections sit in TIME_WAIT. It never lets
        // two listeners share a port on Linux.
        _ = evutil_make_listen_socket_reuseable(socket)
        _ = evutil_make_socket_nonblocking(socket)
        _ = evutil_make_socket_closeonexec(socket)
        guard Glibc.bind(socket, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(socket)
            throw HTTPServerError(code: .bindFailed, message: "cannot bind \(host):\(port): \(reason)")
        }
        return socket
    }

    private static func localPort(of socket: Int32) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard result == 0 else { return nil }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                describe(UnsafeMutablePointer(mutating: $0), length: Int32(length)).port
            }
        }
    }

    private static func string(_ terminated: [CChar]) -> String {
        String(decoding: terminated.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The numeric address and port of `address`; ("", 0) for a family other than IPv4/IPv6.
    static func describe(_ address: UnsafeMutablePointer<sockaddr>?, length: Int32) -> (host: String, port: Int) {
        guard let address else { return ("", 0) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { ipv4 in
                var bytes = ipv4.pointee.sin_addr
                inet_ntop(AF_INET, &bytes, &text, socklen_t(text.count))
                return (Self.string(text), Int(UInt16(bigEndian: ipv4.pointee.sin_port)))
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { ipv6 in
                var bytes = ipv6.pointee.sin6_addr
                inet_ntop(AF_INET6, &bytes, &text, socklen_t(text.count))
                return (Self.string(text), Int(UInt16(bigEndian: ipv6.pointee.sin6_port)))
            }
        default:
            return ("", 0)
        }
    }
}
