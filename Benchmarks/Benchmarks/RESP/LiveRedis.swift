import ChatRuntime
import Foundation
import Logging
import Synchronization

/// A redis-server on a free loopback port for the live benchmarks, and one connection to it.
/// Stopped with SIGKILL: the benchmark's threads block SIGTERM, and a spawned process inherits
/// that mask, so a polite signal would never arrive.
final class LiveRedis: Sendable {
    static let shared = LiveRedis()

    static let available = FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server")

    private struct Running: @unchecked Sendable {
        // @unchecked Sendable: only touched under the mutex below.
        var process: Process
        var loop: EventLoop
        var connection: RedisConnection
    }

    private let running = Mutex<Running?>(nil)

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func start() async throws {
        if running.withLock({ $0 != nil }) { return }
        let port = try Self.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments = ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let loop = EventLoop(name: "bench-redis")
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        for _ in 0..<50 {
            if let connection = try? await RedisConnection.connect(
                to: RedisEndpoint(host: "127.0.0.1", port: port), on: loop, logger: logger)
            {
                running.withLock { $0 = Running(process: process, loop: loop, connection: connection) }
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        loop.stop()
        throw Failure(description: "redis-server on port \(port) did not accept connections")
    }

    func connection() async throws -> RedisConnection {
        guard let connection = running.withLock({ $0?.connection }) else {
            throw Failure(description: "redis not started")
        }
        return connection
    }

    func stop() async {
        guard
            let stopped = running.withLock({ state -> Running? in
                defer { state = nil }
                return state
            })
        else { return }
        await stopped.connection.close()
        kill(stopped.process.processIdentifier, SIGKILL)
        stopped.process.waitUntilExit()
        stopped.loop.stop()
    }

    private static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0
            }
        }
        guard bound else { throw Failure(description: "bind() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
