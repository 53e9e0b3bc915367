import Actors
import ChatRuntime
import Foundation
import Logging
import StubUpstream
import TestSupport
import Testing

/// The read path against a real redis-server and the in-process stub upstream: cold reads,
/// single flight, stale-while-revalidate, stale-if-error, negative caching, Redis outages.
@Suite("Participants read path", .serialized, .timeLimit(.minutes(2)))
struct ParticipantsReadPathTests {
    static let logger = Logger(label: "test.read-path")

    /// A settable wall clock shared by the cache and the coordinator.
    final class TestClock: Sendable {
        private let current = AnnotatedMutex(Date(timeIntervalSince1970: 1_795_000_000))
        var now: Date { current.withLock { $0 } }
        func advance(by duration: Duration) { current.withLock { $0 = $0.addingTimeInterval(duration.timeInterval) } }
    }

    struct Fixture {
        let loop: EventLoop
        let redis: RedisServer
        let stub: StubUpstream
        let supervisor: RedisSupervisor
        let supervisorTask: Task<Void, any Error>
        let cacheTask: Task<Void, any Error>
        /// Runs the coordinator's background refreshes (lazy updates).
        let coordinatorTask: Task<Void, any Error>
        let cache: ParticipantsCache
        let upstream: UpstreamClient
        let coordinator: RefreshCoordinator
        let reader: ParticipantsReader
        let clock: TestClock
        static let settings = CacheSettings(
            ttl: .seconds(3600), staleThreshold: .seconds(900), keep: .seconds(86_400),
            notFoundTTL: .seconds(60), l1Capacity: 1000)

        init(lazyUpdate: Bool = true, l1Capacity: Int = 1000, maxBackgroundRefreshes: Int = 8) async throws {
            loop = EventLoop(name: "read-path")
            redis = try await RedisServer.start()
            stub = StubUpstream(
                settings: .init(chats: 100, participantsPerChat: 5, maxHang: .seconds(30)), loop: loop, logger: logger)
            let port = try await stub.start(port: 0)
            supervisor = RedisSupervisor(
                endpoint: redis.endpoint(), loop: loop,
                policy: .init(
                    maxRetries: 2, backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(100)),
                    probeInterval: .milliseconds(200)),
                connectionOptions: .init(connectTimeout: .milliseconds(500), commandTimeout: .milliseconds(500)),
                random: SeededRandom(seed: 1), logger: logger)
            let supervisor = supervisor
            supervisorTask = Task { try await supervisor.run() }
            clock = TestClock()
            let clock = clock
            var settings = Self.settings
            settings.l1Capacity = l1Capacity
            cache = ParticipantsCache(
                supervisor: supervisor, loop: loop, settings: settings, now: { clock.now }, logger: logger)
            let cache = cache
            cacheTask = Task { try await cache.run() }
            upstream = try UpstreamClient(
                loop: loop, baseURL: "http://127.0.0.1:\(port)", token: nil,
                settings: .init(
                    maxCallDuration: .seconds(2), maxAttempts: 2,
                    backoff: Backoff(initial: .milliseconds(10), maximum: .milliseconds(20)),
                    breakerFailureThreshold: 1000),
                random: SeededRandom(seed: 2), logger: logger)
            coordinator = RefreshCoordinator(
                upstream: upstream, cache: cache, loop: loop, maxBackgroundRefreshes: maxBackgroundRefreshes,
                now: { clock.now },
                logger: logger)
            let coordinator = coordinator
            coordinatorTask = Task { try await coordinator.run() }
            reader = ParticipantsReader(cache: cache, coordinator: coordinator, lazyUpdate: lazyUpdate)
            try #require(
                await eventually(timeout: .seconds(10)) { await supervisor.state == .ready }, "Redis was not ready")
        }

        func close() async {
            coordinatorTask.cancel()
            cacheTask.cancel()
            supervisorTask.cancel()
            await upstream.close()
            await stub.shutdown()
            redis.cleanup()
            loop.stop()
        }

        /// The entry a cold read of `chat` fetched from upstream; nil, with the issue recorded,
        /// when the read did not answer with an entry from upstream.
        func readFromUpstream(_ chat: ChatID) async -> ParticipantsEntry? {
            guard case .entry(let entry, _, .upstream) = await reader.read(chat) else {
                Issue.record("cold read of \(chat) failed")
                return nil
            }
            return entry
        }

        func redisEntry(_ chat: String) async throws -> ParticipantsEntry? {
            let raw = try await redis.cli("GET", "participants:v1:{\(chat)}")
            let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { return nil }
            return try EntryCodec.decodeFromRedis(Array(trimmed.utf8))
        }
    }

    static func chat(_ id: String) -> ChatID { ChatID(validating: id)! }

    @Test func coldReadFetchesOnceThenServesFromMemoryAndRedis() async throws {
        let fixture = try await Fixture()
        let first = await fixture.reader.read(Self.chat("chat-1"))
        guard case .entry(let entry, let stale, let source) = first else {
            Issue.record("expected an entry, got \(first)")
            await fixture.close()
            return
        }
        #expect(!stale)
        #expect(source == .upstream)
        #expect(entry.participants.count == 5)
        #expect(try await fixture.redisEntry("chat-1") == entry)

        let second = await fixture.reader.read(Self.chat("chat-1"))
        #expect(second == .entry(entry, stale: false, source: .memory))
        #expect(await fixture.stub.requestCount(forChat: "chat-1") == 1)
        await fixture.close()
    }

    @Test func fiftyConcurrentReadersOfAColdChatCauseOneUpstreamCall() async throws {
        let fixture = try await Fixture()
        await fixture.stub.updateFaults { $0.latency = .milliseconds(200) }
        let reader = fixture.reader
        let outcomes = await withTaskGroup(of: ReadOutcome.self) { group in
            for _ in 0..<50 { group.addTask { await reader.read(Self.chat("chat-7")) } }
            return await group.reduce(into: [ReadOutcome]()) { $0.append($1) }
        }
        #expect(outcomes.count == 50)
        #expect(outcomes.allSatisfy { if case .entry = $0 { true } else { false } })
        #expect(await fixture.stub.requestCount(forChat: "chat-7") == 1)
        await fixture.close()
    }

    @Test func staleEntryIsServedStaleThenRefreshedInTheBackground() async throws {
        let fixture = try await Fixture()
        guard case .entry(let original, _, _) = await fixture.reader.read(Self.chat("chat-2")) else {
            Issue.record("cold read failed")
            await fixture.close()
            return
        }
        _ = await fixture.stub.bump(chat: "chat-2")
        fixture.clock.advance(by: .seconds(1000)) // past the 900 s stale threshold, before the TTL
        let staleRead = await fixture.reader.read(Self.chat("chat-2"))
        #expect(staleRead == .entry(original, stale: true, source: .memory))
        let refreshed = await eventually(timeout: .seconds(5)) {
            guard let entry = await fixture.cache.peekL1(Self.chat("chat-2")) else { return false }
            return entry.version == original.version + 1
        }
        #expect(refreshed)
        #expect(await fixture.stub.requestCount(forChat: "chat-2") == 2)
        if case .entry(let entry, let stale, _) = await fixture.reader.read(Self.chat("chat-2")) {
            #expect(!stale)
            #expect(entry.version == original.version + 1)
        }
        await fixture.close()
    }

    @Test func lazyUpdateOffServesStaleWithoutRefreshing() async throws {
        // One background refresh at a time, in the order asked: a marker asked for after the
        // stale read is refreshed only once whatever that read queued has been.
        let fixture = try await Fixture(lazyUpdate: false, maxBackgroundRefreshes: 1)
        _ = await fixture.reader.read(Self.chat("chat-3"))
        fixture.clock.advance(by: .seconds(1000))
        if case .entry(_, let stale, _) = await fixture.reader.read(Self.chat("chat-3")) {
            #expect(stale)
        } else {
            Issue.record("stale read failed")
        }
        await fixture.coordinator.refreshInBackground(Self.chat("chat-6"))
        try #require(
            await eventually(timeout: .seconds(10)) { await fixture.stub.requestCount(forChat: "chat-6") == 1 })
        #expect(await fixture.stub.requestCount(forChat: "chat-3") == 1)
        await fixture.close()
    }

    @Test(arguments: ["server_error", "malformed"])
    func upstreamFailureKeepsTheLastGoodData(fault: String) async throws {
        let fixture = try await Fixture()
        guard case .entry(let original, _, _) = await fixture.reader.read(Self.chat("chat-4")) else {
            Issue.record("cold read failed")
            await fixture.close()
            return
        }
        await fixture.stub.updateFaults {
            if fault == "server_error" { $0.errorRate = 1 } else { $0.malformedRate = 1 }
        }
        fixture.clock.advance(by: .seconds(3700)) // past the TTL: a synchronous refresh is due
        let read = await fixture.reader.read(Self.chat("chat-4"))
        // The last good copy, from L1 or Redis (both hold it), marked stale.
        guard case .entry(original, true, _) = read else {
            Issue.record("expected the last good entry served stale, got \(read)")
            await fixture.close()
            return
        }
        #expect(try await fixture.redisEntry("chat-4") == original)
        // A chat never fetched has nothing to fall back on.
        if case .unavailable = await fixture.reader.read(Self.chat("chat-5")) {
        } else {
            Issue.record("expected unavailable for a cold chat while upstream fails")
        }
        await fixture.close()
    }

    @Test func unknownChatIsRememberedAsNotFound() async throws {
        let fixture = try await Fixture()
        #expect(await fixture.reader.read(Self.chat("no-such-chat")) == .notFound)
        #expect(await fixture.reader.read(Self.chat("no-such-chat")) == .notFound)
        #expect(await fixture.stub.requestCount(forChat: "no-such-chat") <= 1)
        let marker = try await fixture.redis.cli("EXISTS", "participants:v1:{no-such-chat}:missing")
        #expect(marker.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        await fixture.close()
    }

    @Test func withRedisDownReadsUseMemoryAndUpstreamAndFetchesAreWrittenBackLater() async throws {
        let fixture = try await Fixture()
        guard case .entry(let hot, _, _) = await fixture.reader.read(Self.chat("chat-10")) else {
            Issue.record("cold read failed")
            await fixture.close()
            return
        }
        await fixture.redis.kill()
        #expect(await eventually(timeout: .seconds(10)) { await fixture.supervisor.state != .ready })

        #expect(await fixture.reader.read(Self.chat("chat-10")) == .entry(hot, stale: false, source: .memory))
        let cold = await fixture.reader.read(Self.chat("chat-11"))
        guard case .entry(let fetched, false, .upstream) = cold else {
            Issue.record("expected an upstream read while Redis is down, got \(cold)")
            await fixture.close()
            return
        }
        #expect(await fixture.cache.statistics.writeBackPending == 1)

        try await fixture.redis.restart()
        let writtenBack = await eventually(timeout: .seconds(10)) {
            (try? await fixture.redisEntry("chat-11")) == fetched
        }
        #expect(writtenBack)
        // The buffer is emptied when the write's reply reaches the cache, a moment after the
        // entry is visible in Redis.
        let drained = await eventually(timeout: .seconds(10)) { await fixture.cache.statistics.writeBackPending == 0 }
        #expect(drained)
        await fixture.close()
    }

    @Test func writeBackScriptNeverOverwritesNewerData() async throws {
        let fixture = try await Fixture()
        let key = "participants:v1:{chat-20}"
        let base = fixture.clock.now
        func entry(version: Int64, at date: Date) -> ParticipantsEntry {
            ParticipantsEntry(chatID: Self.chat("chat-20"), participants: [], version: version, fetchedAt: date)
        }
        func writeIfNewer(_ entry: ParticipantsEntry) async throws -> String {
            try await fixture.redis.cli(
                "EVAL", ParticipantsKeys.writeIfNewerScript, "1", key,
                String(decoding: EntryCodec.encodeForRedis(entry), as: UTF8.self),
                ISO8601Timestamp.string(from: entry.fetchedAt), "3600"
            ).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try await writeIfNewer(entry(version: 2, at: base.addingTimeInterval(60))) == "1")
        // An older copy kept during an outage must not replace what another instance wrote since.
        #expect(try await writeIfNewer(entry(version: 1, at: base)) == "0")
        #expect(try await fixture.redisEntry("chat-20")?.version == 2)
        #expect(try await writeIfNewer(entry(version: 3, at: base.addingTimeInterval(120))) == "1")
        #expect(try await fixture.redisEntry("chat-20")?.version == 3)
        await fixture.close()
    }

    /// What the cache asked Redis for since the last `CONFIG RESETSTAT`, from `INFO commandstats`.
    static func commandCalls(_ redis: RedisServer) async throws -> [String: Int] {
        var calls: [String: Int] = [:]
        for line in try await redis.cli("INFO", "commandstats").split(whereSeparator: \.isNewline) {
            // cmdstat_get:calls=2,usec=...
            guard line.hasPrefix("cmdstat_"), let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[line.index(line.startIndex, offsetBy: 8)..<colon])
            let fields = line[line.index(after: colon)...].split(separator: ",")
            if let field = fields.first(where: { $0.hasPrefix("calls=") }), let count = Int(field.dropFirst(6)) {
                calls[name] = count
            }
        }
        return calls
    }

    @Test func redisHitIsOneGetAndTheMarkerIsAskedForOnlyAfterAMiss() async throws {
        let fixture = try await Fixture(l1Capacity: 0)
        guard let entry = await fixture.readFromUpstream(Self.chat("chat-3")) else {
            await fixture.close()
            return
        }
        _ = try await fixture.redis.cli("SET", "participants:v1:{gone}:missing", "1")
        _ = try await fixture.redis.cli("CONFIG", "RESETSTAT")

        #expect(await fixture.cache.lookup(Self.chat("chat-3")) == .hit(entry, .fresh, .cache))
        #expect(await fixture.cache.lookup(Self.chat("chat-3")) == .hit(entry, .fresh, .cache))
        var calls = try await Self.commandCalls(fixture.redis)
        #expect(calls["get"] == 2)
        #expect(calls["exists"] == nil)

        #expect(await fixture.cache.lookup(Self.chat("gone")) == .notFound)
        #expect(await fixture.cache.lookup(Self.chat("never-seen")) == .miss)
        calls = try await Self.commandCalls(fixture.redis)
        #expect(calls["get"] == 4)
        #expect(calls["exists"] == 2)
        await fixture.close()
    }

    @Test func redisReadsFollowTheStoredBytesWhateverWasDecodedBefore() async throws {
        let fixture = try await Fixture(l1Capacity: 0)
        let chat = Self.chat("chat-30")
        let key = "participants:v1:{chat-30}"
        func entry(version: Int64, name: String) -> ParticipantsEntry {
            ParticipantsEntry(
                chatID: chat,
                participants: [Participant(userID: "u-1", displayName: name, avatarURL: nil, role: "member")],
                version: version, fetchedAt: fixture.clock.now)
        }
        func store(_ entry: ParticipantsEntry) async throws {
            _ = try await fixture.redis.cli(
                "SET", key, String(decoding: EntryCodec.encodeForRedis(entry), as: UTF8.self))
        }
        let first = entry(version: 1, name: "Ann")
        // Same length as the first, one byte apart: the memo must compare every byte.
        let second = entry(version: 2, name: "Ann")
        let renamed = entry(version: 2, name: "Bob")
        for expected in [first, first, second, renamed, first] {
            try await store(expected)
            #expect(await fixture.cache.lookup(chat) == .hit(expected, .fresh, .cache))
        }
        _ = try await fixture.redis.cli("SET", key, "{not an entry")
        #expect(await fixture.cache.lookup(chat) == .miss)
        // An error reply (the key holds a list) reads as nothing there, not as Redis being away.
        _ = try await fixture.redis.cli("DEL", key)
        _ = try await fixture.redis.cli("RPUSH", key, "x")
        #expect(await fixture.cache.lookup(chat) == .miss)
        await fixture.close()
    }
}
