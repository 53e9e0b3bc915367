#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking Redis client for the fixture: it must not depend on the code under test.
enum RedisProbe {
    /// Whether a Redis server on 127.0.0.1:`port` answers PING with PONG (after AUTH when a
    /// password is given) within about `timeoutMilliseconds`.
    static func answersPing(port: Int, password: String?, timeoutMilliseconds: Int = 500) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in.loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return false }

        var request: [UInt8] = []
        var expectedLines = 1
        if let password {
            request += encode(["AUTH", password])
            expectedLines += 1
        }
        request += encode(["PING"])
        guard
            request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) })
                == request.count
        else {
            return false
        }

        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while response.count(where: { $0 == UInt8(ascii: "\n") }) < expectedLines {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return false }
            response += buffer[..<count]
        }
        let lines = String(decoding: response, as: UTF8.self).split(separator: "\r\n")
        return lines.last == "+PONG"
    }

    private static func encode(_ arguments: [String]) -> [UInt8] {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            let utf8 = Array(argument.utf8)
            bytes += Array("$\(utf8.count)\r\n".utf8) + utf8 + Array("\r\n".utf8)
        }
        return bytes
    }
}
