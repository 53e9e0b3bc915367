#if canImport(Glibc)
import Glibc
#endif

/// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the port the kernel
/// chose, closes. Another process may take it before the caller binds it, so callers that
/// start servers retry on a fresh port when the bind fails.
public func freeLoopbackPort() -> Int {
    let socket = LoopbackSocket.bound(port: 0)
    defer { close(socket.descriptor) }
    return socket.port
}

/// A TCP socket bound to 127.0.0.1, for the test helpers.
struct LoopbackSocket {
    let descriptor: Int32
    let port: Int

    /// Binds a close-on-exec TCP socket to 127.0.0.1:`port`; traps on failure, which on
    /// loopback with port 0 only happens when the machine is out of descriptors or ports.
    static func bound(port: Int) -> LoopbackSocket {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(descriptor >= 0, "socket() failed: errno \(errno)")
        var address = sockaddr_in.loopback(port: port)
        let bindResult = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        precondition(bindResult == 0, "bind(127.0.0.1:\(port)) failed: errno \(errno)")
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let nameResult = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getsockname(descriptor, $0, &length)
            }
        }
        precondition(nameResult == 0, "getsockname failed: errno \(errno)")
        return LoopbackSocket(descriptor: descriptor, port: Int(UInt16(bigEndian: bound.sin_port)))
    }
}
