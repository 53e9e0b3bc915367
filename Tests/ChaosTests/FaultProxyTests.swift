import ChatRuntime
import FaultInjection
import Foundation
import TestSupport
import Testing

/// The fault proxy in front of a real redis-server, one mode at a time. Fast; runs in `make test`.
@Suite("FaultProxy", .serialized, .timeLimit(.minutes(2)))
struct FaultProxyTests {
    /// A blocking client that speaks Redis inline commands; every read is bounded.
    final class LineClient {
        private let socket: Int32
        private var received: [UInt8] = []

        init(port: Int) throws {
            // The descriptor is stored only once connected: deinit (which closes it) runs even
            // for an initializer that throws after setting every property.
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard result == 0 else {
                let error = errno
                Glibc.close(socket)
                throw RawSocketError.system("connect", error)
            }
            self.socket = socket
        }

        deinit { Glibc.close(socket) }

        func send(_ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }

        enum ReadResult: Equatable {
            case bytes([UInt8])
            /// The peer closed (FIN or RST) before `count` bytes came.
            case closed([UInt8])
            case timedOut([UInt8])
        }

        /// Reads until `count` bytes arrived, the peer closed, or `timeout` passed.
        func read(count: Int, timeout: Duration) -> ReadResult {
            let deadline = ContinuousClock.now + timeout
            while received.count < count {
                let remaining = deadline - ContinuousClock.now
                guard remaining > .zero else { return .timedOut(received) }
                var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
                let milliseconds = Int32(
                    max(
                        1,
                        remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
                guard poll(&poller, 1, milliseconds) > 0 else { continue }
                var chunk = [UInt8](repeating: 0, count: 65_536)
                let read = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
                guard read > 0 else { return .closed(received) }
                received += chunk[..<read]
            }
            let result = Array(received.prefix(count))
            received.removeFirst(count)
            return .bytes(result)
        }

        /// Sends an inline command and reads `expected.count` bytes of its answer.
        func roundTrip(_ command: String, expecting expected: String, timeout: Duration = .seconds(5)) -> Bool {
            send(command + "\r\n")
            return read(count: expected.utf8.count, timeout: timeout) == .bytes(Array(expected.utf8))
        }
    }

    struct Fixture {
        let loop = EventLoop(name: "fault-proxy-test")
        let redis: RedisServer
        let proxy: FaultProxy

        init() async throws {
            redis = try await RedisServer.start()
            proxy = try await FaultProxy.start(loop: loop, targetPort: redis.port)
        }

        func close() async {
            await proxy.close()
            redis.cleanup()
            loop.stop()
        }
    }

    @Test func passForwardsBothWaysAndCounts() async throws {
        let fixture = try await Fixture()
        let client = try LineClient(port: fixture.proxy.port)
        #expect(client.roundTrip("PING", expecting: "+PONG\r\n"))
        #expect(client.roundTrip("SET k hello", expecting: "+OK\r\n"))
        #expect(client.roundTrip("GET k", expecting: "$5\r\nhello\r\n"))
        let statistics = await fixture.proxy.statistics
        #expect(statistics.accepted == 1)
        #expect(statistics.open == 1)
        #expect(statistics.bytesToTarget == "PING\r\nSET k hello\r\nGET k\r\n".utf8.count)
        #expect(statistics.bytesToClients == "+PONG\r\n+OK\r\n$5\r\nhello\r\n".utf8.count)
        await fixture.close()
    }

    @Test func latencyDelaysEachDirectionAndKeepsOrder() async throws {
        let fixture = try await Fixture()
        let client = try LineClient(port: fixture.proxy.port)
        #expect(client.roundTrip("PING", expecting: "+PONG\r\n"))
        await fixture.proxy.setMode(.latency(.milliseconds(150)))
        let started = ContinuousClock.now
        client.send("SET a 1\r\nINCR a\r\nINCR a\r\n")
        let expected = Array("+OK\r\n:2\r\n:3\r\n".utf8)
        #expect(client.read(count: expected.count, timeout: .seconds(5)) == .bytes(expected))
        // A lower bound only: both directions waited.
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        await fixture.proxy.setMode(.pass)
        #expect(client.roundTrip("PING", expecting: "+PONG\r\n"))
        await fixture.close()
    }

    @Test func dropResetsOpenConnectionsAndNewOnesUntilPass() async throws {
        let fixture = try await Fixture()
        let open = try LineClient(port: fixture.proxy.port)
        #expect(open.roundTrip("PING", expecting: "+PONG\r\n"))
        await fixture.proxy.setMode(.drop)
        guard case .closed = open.read(count: 1, timeout: .seconds(5)) else {
            Issue.record("the open connection was not closed")
            await fixture.close()
            return
        }
        let refused = try LineClient(port: fixture.proxy.port)
        refused.send("PING\r\n")
        guard case .closed = refused.read(count: 1, timeout: .seconds(5)) else {
            Issue.record("a new connection was not reset")
            await fixture.close()
            return
        }
        await fixture.proxy.setMode(.pass)
        let again = try LineClient(port: fixture.proxy.port)
        #expect(again.roundTrip("PING", expecting: "+PONG\r\n"))
        let statistics = await fixture.proxy.statistics
        #expect(statistics.resets == 2)
        await fixture.close()
    }

    @Test func blackholeSwallowsEverythingAndNeverCloses() async throws {
        let fixture = try await Fixture()
        let client = try LineClient(port: fixture.proxy.port)
        #expect(client.roundTrip("PING", expecting: "+PONG\r\n"))
        await fixture.proxy.setMode(.blackhole)
        client.send("SET lost 1\r\n")
        #expect(client.read(count: 1, timeout: .milliseconds(500)) == .timedOut([]))
        let newcomer = try LineClient(port: fixture.proxy.port)
        newcomer.send("PING\r\n")
        #expect(newcomer.read(count: 1, timeout: .milliseconds(500)) == .timedOut([]))
        await fixture.proxy.setMode(.pass)
        // What the black hole swallowed never reached Redis.
        #expect(client.roundTrip("EXISTS lost", expecting: ":0\r\n"))
        #expect(await fixture.proxy.statistics.bytesBlackholed == "SET lost 1\r\nPING\r\n".utf8.count)
        await fixture.close()
    }

    @Test func cutReplyForwardsAPrefixThenClosesOnce() async throws {
        let fixture = try await Fixture()
        let client = try LineClient(port: fixture.proxy.port)
        #expect(client.roundTrip("SET big 0123456789abcdef", expecting: "+OK\r\n"))
        await fixture.proxy.setMode(.cutReply(afterBytes: 6))
        client.send("GET big\r\n")
        #expect(client.read(count: 100, timeout: .seconds(5)) == .closed(Array("$16\r\n0".utf8)))
        #expect(await fixture.proxy.mode == .pass)
        let next = try LineClient(port: fixture.proxy.port)
        #expect(next.roundTrip("GET big", expecting: "$16\r\n0123456789abcdef\r\n"))
        #expect(await fixture.proxy.statistics.cuts == 1)
        await fixture.close()
    }

    @Test func bandwidthDripsALargeReply() async throws {
        let fixture = try await Fixture()
        let client = try LineClient(port: fixture.proxy.port)
        let value = String(repeating: "x", count: 20_000)
        #expect(client.roundTrip("SET big \(value)", expecting: "+OK\r\n"))
        await fixture.proxy.setMode(.bandwidth(bytesPerSecond: 10_000))
        let started = ContinuousClock.now
        client.send("GET big\r\n")
        let expected = "$20000\r\n\(value)\r\n"
        #expect(client.read(count: expected.utf8.count, timeout: .seconds(20)) == .bytes(Array(expected.utf8)))
        // A lower bound only: 20 kB at 10 kB/s.
        #expect(ContinuousClock.now - started >= .milliseconds(1500))
        await fixture.close()
    }

    @Test func aTargetThatIsDownClosesTheClient() async throws {
        let loop = EventLoop(name: "fault-proxy-down")
        let proxy = try await FaultProxy.start(loop: loop, targetPort: try ScriptedTCPServer.unusedPort())
        let client = try LineClient(port: proxy.port)
        client.send("PING\r\n")
        guard case .closed = client.read(count: 1, timeout: .seconds(5)) else {
            Issue.record("the client was not closed")
            await proxy.close()
            loop.stop()
            return
        }
        let closed = await eventually(timeout: .seconds(5)) { await proxy.statistics.open == 0 }
        #expect(closed)
        #expect(await proxy.statistics.targetConnectFailures == 1)
        await proxy.close()
        loop.stop()
    }
}
