import Foundation
import Logging
import TestSupport
import Testing

@testable import ChatRuntime

/// Host names looked up through the loop's evdns resolver, never with a blocking call on the
/// loop thread: answers from a nameserver and from /etc/hosts, addresses passed through, a
/// nameserver that never answers bounded by the caller's timeout while the loop keeps running,
/// and Redis and the HTTP client resolving before every new connection.
@Suite("Name resolution", .serialized, .timeLimit(.minutes(1)))
struct NameResolutionTests {
    static let logger = Logger(label: "test.name-resolution")

    static func loop(_ nameserver: FakeNameserver, _ name: String) -> EventLoop {
        EventLoop(name: name, resolver: ResolverSettings(resolvConfPath: nameserver.resolvConf))
    }

    static func resolutionError(
        _ body: () async throws(DNSResolutionError) -> [String]
    ) async -> DNSResolutionError? {
        do {
            let addresses = try await body()
            Issue.record("expected no address, got \(addresses)")
            return nil
        } catch {
            return error
        }
    }

    @Test func namesComeFromTheNameserverAndTheHostsFileAddressesPassThrough() async throws {
        let nameserver = try FakeNameserver(addresses: ["redis.test": "127.0.0.1"])
        defer { nameserver.stop() }
        let loop = Self.loop(nameserver, "resolve-names")
        defer { loop.stop() }
        let resolver = loop.resolver

        #expect(try await resolver.resolve("redis.test", timeout: .seconds(5)) == ["127.0.0.1"])
        #expect(try await resolver.resolve("REDIS.test", timeout: .seconds(5)) == ["127.0.0.1"])
        // /etc/hosts: answered without asking the nameserver.
        #expect(try await resolver.resolve("localhost", timeout: .seconds(5)).first == "127.0.0.1")
        #expect(!nameserver.queries.contains("localhost"))
        // Addresses need no lookup, IPv6 included.
        #expect(try await resolver.resolve("::1", timeout: .seconds(5)) == ["::1"])
        #expect(try await resolver.resolve("10.1.2.3", timeout: .seconds(5)) == ["10.1.2.3"])
        let unknown = await Self.resolutionError { () async throws(DNSResolutionError) in
            try await resolver.resolve("nowhere.test", timeout: .seconds(5))
        }
        #expect(unknown?.code == .notFound)
    }

    @Test func aNameserverThatNeverAnswersIsBoundedAndTheLoopKeepsRunning() async throws {
        let nameserver = try FakeNameserver(silent: true)
        defer { nameserver.stop() }
        let loop = Self.loop(nameserver, "resolve-silent")
        defer { loop.stop() }
        let resolver = loop.resolver

        let lookup = Task {
            await Self.resolutionError { () async throws(DNSResolutionError) in
                // Below the nameserver file's own 1 s, so this bound is the one that ends it.
                try await resolver.resolve("upstream.test", timeout: .milliseconds(800))
            }
        }
        // While the lookup waits, the loop runs jobs and timers: each round trip answers.
        try #require(await eventually(timeout: .seconds(5)) { nameserver.queries.contains("upstream.test") })
        for _ in 0..<10 {
            let fired = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                Task {
                    await loop.run {
                        LoopTimer(loop: loop) { continuation.resume(returning: true) }.schedule(
                            after: .milliseconds(20))
                    }
                }
            }
            #expect(fired)
        }
        let error = await lookup.value
        #expect(error?.code == .timeout)
        #expect(error?.message.contains("0.8") == true, "\(String(describing: error))")
        // evdns' own give-up (timeout:1 attempts:1) comes first with a longer bound.
        let ownTimeout = await Self.resolutionError { () async throws(DNSResolutionError) in
            try await resolver.resolve("upstream.test", timeout: .seconds(5))
        }
        #expect(ownTimeout?.code == .failed, "\(String(describing: ownTimeout))")
    }

    @Test func redisIsLookedUpAgainBeforeEveryConnect() async throws {
        let redis = try await RedisServer.start()
        defer { redis.cleanup() }
        let nameserver = try FakeNameserver(addresses: ["redis.test": "127.0.0.1"])
        defer { nameserver.stop() }
        let loop = Self.loop(nameserver, "resolve-redis")
        defer { loop.stop() }
        let endpoint = RedisEndpoint(host: "redis.test", port: redis.port)
        let options = RedisConnectionOptions(connectTimeout: .seconds(2), commandTimeout: .seconds(2))

        let first = try await RedisConnection.connect(to: endpoint, on: loop, options: options, logger: Self.logger)
        #expect(try await first.send(.ping).string == "PONG")
        await first.close()
        let asked = nameserver.queries.filter { $0 == "redis.test" }.count
        #expect(asked >= 1)

        let second = try await RedisConnection.connect(to: endpoint, on: loop, options: options, logger: Self.logger)
        #expect(try await second.send(.ping).string == "PONG")
        await second.close()
        #expect(
            nameserver.queries.filter { $0 == "redis.test" }.count > asked,
            "the second connect did not look the name up again")

        // The name moves to an address where nothing listens: the next connect follows it.
        nameserver.setAddress("127.0.0.3", for: "redis.test")
        do {
            let moved = try await RedisConnection.connect(to: endpoint, on: loop, options: options, logger: Self.logger)
            await moved.close()
            Issue.record("connected although the name now points at 127.0.0.3")
        } catch {
            #expect(error.code == .connectFailed, "\(error)")
            #expect(error.message.contains("redis.test"), "\(error)")
        }
    }

    @Test func redisWithANameserverThatNeverAnswersFailsWithinTheConnectTimeout() async throws {
        let nameserver = try FakeNameserver(silent: true)
        defer { nameserver.stop() }
        let loop = Self.loop(nameserver, "resolve-redis-silent")
        defer { loop.stop() }
        let started = ContinuousClock.now
        do {
            let connection = try await RedisConnection.connect(
                to: RedisEndpoint(host: "redis.test", port: 6379), on: loop,
                options: RedisConnectionOptions(connectTimeout: .milliseconds(500), commandTimeout: .seconds(1)),
                logger: Self.logger)
            await connection.close()
            Issue.record("connected through a nameserver that never answers")
        } catch {
            #expect(error.code == .connectTimeout, "\(error)")
        }
        // Liveness, not speed: the connect gave up on its own bound rather than hanging.
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    /// A name with only an IPv6 address (an AAAA record), for Redis and the HTTP client alike.
    @Test func ipv6OnlyNamesWorkForRedisAndHTTP() async throws {
        let redis = try await RedisServer.start(extraConfig: ["bind 127.0.0.1 ::1"])
        defer { redis.cleanup() }
        let nameserver = try FakeNameserver(addresses: ["redis6.test": "::1", "upstream6.test": "::1"])
        defer { nameserver.stop() }
        let loop = Self.loop(nameserver, "resolve-ipv6")
        defer { loop.stop() }
        #expect(try await loop.resolver.resolve("redis6.test", timeout: .seconds(5)) == ["::1"])

        let connection = try await RedisConnection.connect(
            to: RedisEndpoint(host: "redis6.test", port: redis.port), on: loop,
            options: RedisConnectionOptions(connectTimeout: .seconds(2), commandTimeout: .seconds(2)),
            logger: Self.logger)
        #expect(try await connection.send(.ping).string == "PONG")
        await connection.close()

        var router = HTTPRouter()
        router.add(.GET, "/where") { request in .text(request.headers["host"] ?? "") }
        let server = HTTPServer(loop: loop, router: router, logger: Self.logger)
        let port = try await server.start(host: "::1", port: 0)
        for base in ["http://upstream6.test:\(port)", "http://[::1]:\(port)"] {
            let client = try HTTPClient(loop: loop, baseURL: base, logger: Self.logger)
            let response = try await client.execute(method: .GET, path: "/where", timeout: .seconds(5))
            #expect(response.status == 200, "\(base)")
            await client.close()
        }
        await server.stop()
    }

    @Test func theHTTPClientConnectsToANamedHostAndReportsANameWithoutAddress() async throws {
        let nameserver = try FakeNameserver(addresses: ["upstream.test": "127.0.0.1"])
        defer { nameserver.stop() }
        let loop = Self.loop(nameserver, "resolve-http")
        defer { loop.stop() }
        let (server, port) = try await HTTPClientTests.startPeer(on: loop)
        let client = try HTTPClient(loop: loop, baseURL: "http://upstream.test:\(port)/v1", logger: Self.logger)
        let response = try await client.execute(method: .GET, path: "/items/1", timeout: .seconds(5))
        #expect(response.status == 200)
        let fields = try JSONDecoder().decode([String: String].self, from: Data(response.body))
        #expect(fields["host"] == "upstream.test:\(port)")
        await client.close()

        let missing = try HTTPClient(loop: loop, baseURL: "http://missing.test:\(port)", logger: Self.logger)
        await HTTPClientTests.expectFailure(.nameResolutionFailed) { () async throws(HTTPClientError) in
            try await missing.execute(method: .GET, path: "/v1/items/1", timeout: .seconds(5))
        }
        await missing.close()

        nameserver.setSilent(true)
        let silent = try HTTPClient(loop: loop, baseURL: "http://silent.test:\(port)", logger: Self.logger)
        await HTTPClientTests.expectFailure(.timeout) { () async throws(HTTPClientError) in
            try await silent.execute(method: .GET, path: "/v1/items/1", timeout: .milliseconds(500))
        }
        await silent.close()
        await server.stop()
    }
}
