public import Logging
import ChatRuntime
public import StubUpstream

/// What the whole service talks to, for tests that run it in-process: a real redis-server and
/// the stub upstream on an event loop of its own. One set can serve several instances
/// (``InProcessService``s sharing a Redis, as replicas do).
public final class TestBackends: Sendable {
    public let redis: RedisServer
    public let stub: StubUpstream
    public let stubPort: Int
    /// The stub's loop, apart from every instance's, so an instance that dies leaves it running.
    private let stubLoop: EventLoop

    /// Starts redis-server (with `redisConfig` lines) and a stub upstream of `chats` chats of
    /// `participantsPerChat` participants each, whose hanging requests end after `maxHang`.
    public static func start(
        chats: Int, participantsPerChat: Int = 4, maxHang: Duration = .seconds(30), redisConfig: [String] = [],
        logger: Logger = Logger(label: "test.backends")
    ) async throws -> TestBackends {
        let redis = try await RedisServer.start(extraConfig: redisConfig)
        let loop = EventLoop(name: "test-stub-upstream")
        let stub = StubUpstream(
            settings: .init(chats: chats, participantsPerChat: participantsPerChat, maxHang: maxHang), loop: loop, logger: logger)
        do {
            let port = try await stub.start(port: 0)
            return TestBackends(redis: redis, stub: stub, stubPort: port, stubLoop: loop)
        } catch {
            loop.stop()
            redis.cleanup()
            throw error
        }
    }

    private init(redis: RedisServer, stub: StubUpstream, stubPort: Int, stubLoop: EventLoop) {
        self.redis = redis
        self.stub = stub
        self.stubPort = stubPort
        self.stubLoop = stubLoop
    }

    /// The service's variables that point at these backends.
    public var environment: [String: String] {
        ["REDIS_URL": redis.url, "PARTICIPANTS_API_URL": "http://127.0.0.1:\(stubPort)"]
    }

    /// How many keys of Redis match `pattern` (SCAN, so it never blocks the server).
    public func redisKeyCount(pattern: String) async -> Int {
        let output = (try? await redis.cli("--scan", "--pattern", pattern)) ?? ""
        return output.split(separator: "\n").filter { !$0.isEmpty }.count
    }

    /// Stops the stub (hanging requests included) and Redis.
    public func close() async {
        await stub.shutdown()
        stubLoop.stop()
        redis.cleanup()
    }
}
