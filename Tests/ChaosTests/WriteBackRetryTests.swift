import Actors
import Foundation
import Logging
import ChatRuntime
import Testing
import TestSupport

/// Found by the OOM chaos scenario: entries kept for write-back because Redis refused them
/// (`-OOM`) while staying `ready` were never written, since only a change to `ready` flushed the
/// buffer. Fast; runs in `make test`.
@Suite("Write-back after refused writes", .serialized, .timeLimit(.minutes(1)))
struct WriteBackRetryTests {
    @Test func entriesRefusedWithOOMAreWrittenOnceRedisAcceptsWritesAgain() async throws {
        let logger = Logger(label: "test.write-back-retry")
        let loop = EventLoop(name: "write-back-retry")
        let redis = try await RedisServer.start()
        defer { redis.cleanup() }
        let supervisor = RedisSupervisor(
            endpoint: redis.endpoint(), loop: loop,
            policy: .init(maxRetries: 2, backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(100)), probeInterval: .milliseconds(200)),
            connectionOptions: .init(connectTimeout: .milliseconds(500), commandTimeout: .milliseconds(500)),
            random: SeededRandom(seed: 1), logger: logger)
        let supervisorTask = Task { try await supervisor.run() }
        let cache = ParticipantsCache(
            supervisor: supervisor, loop: loop,
            settings: CacheSettings(ttl: .seconds(3600), staleThreshold: .seconds(900), keep: .seconds(86_400), notFoundTTL: .seconds(60), l1Capacity: 100),
            logger: logger)
        let cacheTask = Task { try await cache.run() }
        #expect(await eventually(timeout: .seconds(10)) { await supervisor.state == .ready })

        _ = try await redis.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
        _ = try await redis.cli("CONFIG", "SET", "maxmemory", "1")
        let chat = try #require(ChatID(validating: "chat-oom"))
        let entry = ParticipantsEntry(
            UpstreamChat(chatID: chat, participants: [Participant(userID: "u", displayName: "U", avatarURL: nil, role: "member")], version: 3),
            fetchedAt: Date())
        #expect(await cache.store(entry) == .deferred)
        #expect(await cache.statistics.writeBackPending == 1)
        #expect(await supervisor.state == .ready)

        _ = try await redis.cli("CONFIG", "SET", "maxmemory", "0")
        let written = await eventually(timeout: .seconds(10)) {
            await cache.statistics.writeBackPending == 0
        }
        #expect(written)
        let stored = try await redis.cli("GET", "participants:v1:{chat-oom}")
        #expect(try EntryCodec.decodeFromRedis(Array(stored.utf8)).version == 3)

        cacheTask.cancel()
        supervisorTask.cancel()
        #expect(await eventually(timeout: .seconds(5)) { await supervisor.state == .stopped })
        loop.stop()
    }
}
