#if canImport(Glibc)
import Glibc
#endif

/// A socket on 127.0.0.1 that listens but never accepts nor answers: the kernel completes TCP
/// handshakes into the backlog, so clients connect and then wait forever for a reply. Use it
/// to test connect and handshake timeouts.
public final class SilentListener: Sendable {
    public let port: Int
    private let descriptor: Int32

    public init() {
        let socket = LoopbackSocket.bound(port: 0)
        precondition(listen(socket.descriptor, 16) == 0, "listen failed: errno \(errno)")
        descriptor = socket.descriptor
        port = socket.port
    }

    deinit {
        close(descriptor)
    }

    /// A redis:// URL pointing at this listener.
    public var url: String { "redis://127.0.0.1:\(port)/0" }
}
