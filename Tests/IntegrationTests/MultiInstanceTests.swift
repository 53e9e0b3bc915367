import Actors
import Foundation
import Logging
import ChatRuntime
import StubUpstream
import Testing
import TestSupport

/// Several instances in one process, each with its own loop, supervisor, cache, upstream
/// client, coordinator, reader and invalidation feed, sharing one redis-server and one stub
/// upstream: cross-instance single flight of cold reads and coherent L1s.
@Suite("Many instances, one Redis", .serialized, .timeLimit(.minutes(3)))
struct MultiInstanceTests {
    static let logger = Logger(label: "test.multi-instance")
    static let settings = CacheSettings(
        ttl: .seconds(3600), staleThreshold: .seconds(900), keep: .seconds(86_400), notFoundTTL: .seconds(60), l1Capacity: 1000)

    /// One instance's participants stack.
    struct Instance {
        let name: String
        let loop: EventLoop
        let supervisor: RedisSupervisor
        let cache: ParticipantsCache
        let upstream: UpstreamClient
        let coordinator: RefreshCoordinator
        let reader: ParticipantsReader
        let feed: InvalidationFeed
        let tasks: [Task<Void, any Error>]

        init(name: String, redis: RedisServer, upstreamPort: Int) async throws {
            self.name = name
            loop = EventLoop(name: name)
            supervisor = RedisSupervisor(
                endpoint: redis.endpoint(), loop: loop,
                policy: .init(maxRetries: 2, backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(100)), probeInterval: .milliseconds(200)),
                connectionOptions: .init(connectTimeout: .milliseconds(500), commandTimeout: .milliseconds(1000)),
                random: SeededRandom(seed: 3), logger: MultiInstanceTests.logger)
            let coordination = InstanceCoordination(instanceID: name, refreshLockTTL: .seconds(5))
            cache = ParticipantsCache(
                supervisor: supervisor, loop: loop, settings: MultiInstanceTests.settings, coordination: coordination,
                logger: MultiInstanceTests.logger)
            upstream = try UpstreamClient(
                loop: loop, baseURL: "http://127.0.0.1:\(upstreamPort)", token: nil,
                settings: .init(maxCallDuration: .seconds(3), maxAttempts: 1,
                                backoff: Backoff(initial: .milliseconds(10), maximum: .milliseconds(20)),
                                breakerFailureThreshold: 1000),
                random: SeededRandom(seed: 4), logger: MultiInstanceTests.logger)
            coordinator = RefreshCoordinator(
                upstream: upstream, cache: cache, loop: loop, supervisor: supervisor, coordination: coordination,
                logger: MultiInstanceTests.logger)
            reader = ParticipantsReader(cache: cache, coordinator: coordinator, lazyUpdate: true)
            feed = InvalidationFeed(
                supervisor: supervisor, cache: cache, coordination: coordination, loop: loop, logger: MultiInstanceTests.logger)
            let (supervisor, cache, coordinator, feed) = (supervisor, cache, coordinator, feed)
            tasks = [
                Task { try await supervisor.run() },
                Task { try await cache.run() },
                Task { try await coordinator.run() },
                Task { try await feed.run() },
            ]
            try #require(await eventually(timeout: .seconds(10)) { await supervisor.state == .ready }, "Redis was not ready")
            // Positioning drops what L1 holds by then; the tests start after it.
            try #require(await eventually(timeout: .seconds(10)) { await feed.position != nil }, "the invalidation feed did not position")
        }

        func close() async {
            for task in tasks.reversed() { task.cancel() }
            for task in tasks.reversed() { _ = try? await task.value }
            await upstream.close()
            loop.stop()
        }
    }

    /// A redis-server, the stub on its own loop, and `count` instances named a, b, c, ...
    struct Cluster {
        let redis: RedisServer
        let stubLoop: EventLoop
        let stub: StubUpstream
        let instances: [Instance]

        init(instances count: Int, latency: Duration = .zero) async throws {
            redis = try await RedisServer.start()
            stubLoop = EventLoop(name: "stub")
            stub = StubUpstream(settings: .init(chats: 100, participantsPerChat: 5, maxHang: .seconds(30)), loop: stubLoop, logger: MultiInstanceTests.logger)
            let port = try await stub.start(port: 0)
            await stub.updateFaults { $0.latency = latency }
            var instances: [Instance] = []
            for index in 0..<count {
                let name = String(UnicodeScalar(UInt8(ascii: "a") + UInt8(index)))
                instances.append(try await Instance(name: "instance-\(name)", redis: redis, upstreamPort: port))
            }
            self.instances = instances
        }

        func close() async {
            for instance in instances { await instance.close() }
            await stub.shutdown()
            stubLoop.stop()
            redis.cleanup()
        }

        /// `readers` concurrent reads of `chat` on every instance at once.
        func readEverywhere(_ chat: ChatID, readers: Int) async -> [(instance: String, outcome: ReadOutcome)] {
            await withTaskGroup(of: (String, ReadOutcome).self) { group in
                for instance in instances {
                    for _ in 0..<readers {
                        let reader = instance.reader
                        let name = instance.name
                        group.addTask { (name, await reader.read(chat)) }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
    }

    static func chat(_ id: String) -> ChatID { ChatID(validating: id)! }

    static func version(_ outcome: ReadOutcome) -> Int64? {
        if case .entry(let entry, _, _) = outcome { return entry.version }
        return nil
    }

    static func source(_ outcome: ReadOutcome) -> ReadSource? {
        if case .entry(_, _, let source) = outcome { return source }
        return nil
    }

    // MARK: Single flight across instances

    @Test func coldChatReadByEveryInstanceAtOnceCostsOneUpstreamCall() async throws {
        let cluster = try await Cluster(instances: 3, latency: .milliseconds(300))
        let outcomes = await cluster.readEverywhere(Self.chat("chat-7"), readers: 10)
        #expect(outcomes.count == 30)
        #expect(outcomes.allSatisfy { Self.version($0.outcome) == 1 }, "\(outcomes)")
        #expect(await cluster.stub.requestCount(forChat: "chat-7") == 1)
        // One instance fetched (its readers see "upstream"); the others took its result from Redis.
        let fetchers = Set(outcomes.filter { Self.source($0.outcome) == .upstream }.map(\.instance))
        #expect(fetchers.count == 1)
        #expect(outcomes.filter { Self.source($0.outcome) == .cache }.count == 20)
        // Every instance now serves it from its own L1.
        for instance in cluster.instances {
            #expect(await instance.cache.peekL1(Self.chat("chat-7"))?.version == 1, "\(instance.name)")
        }
        #expect(try await cluster.redis.cli("EXISTS", "participants:v1:{chat-7}:lock") == "0")
        await cluster.close()
    }

    @Test func aNotFoundSeenByTheLockHolderReachesTheWaiters() async throws {
        let cluster = try await Cluster(instances: 3, latency: .milliseconds(300))
        let outcomes = await cluster.readEverywhere(Self.chat("chat-4040"), readers: 5)
        #expect(outcomes.allSatisfy { $0.outcome == .notFound }, "\(outcomes)")
        #expect(await cluster.stub.statistics.unknownIDsRequested == 1)
        await cluster.close()
    }

    @Test func whenTheHolderFailsOneMoreInstanceTriesThenTheRestGiveUp() async throws {
        let cluster = try await Cluster(instances: 4, latency: .milliseconds(400))
        await cluster.stub.updateFaults { $0.errorRate = 1 }
        let outcomes = await cluster.readEverywhere(Self.chat("chat-9"), readers: 3)
        // Nothing cached anywhere: every reader gets "unavailable" (503 over HTTP).
        #expect(outcomes.allSatisfy { if case .unavailable = $0.outcome { true } else { false } }, "\(outcomes)")
        // The first holder, then normally one more after it failed. On a loaded machine the
        // waiters' bounded waits may run out and each instance try once; never more than one
        // call per instance (4), however many readers each has (3).
        let calls = await cluster.stub.requestCount(forChat: "chat-9")
        #expect(calls >= 1 && calls <= 4, "upstream calls for chat-9: \(calls)")
        await cluster.close()
    }

    @Test func withoutRedisEachInstanceFetchesByItself() async throws {
        let cluster = try await Cluster(instances: 2, latency: .milliseconds(100))
        await cluster.redis.kill()
        for instance in cluster.instances {
            #expect(await eventually(timeout: .seconds(10)) { await instance.supervisor.state != .ready })
        }
        let outcomes = await cluster.readEverywhere(Self.chat("chat-11"), readers: 5)
        #expect(outcomes.allSatisfy { Self.version($0.outcome) == 1 })
        // Availability over strictness: one call per instance, still one per instance.
        #expect(await cluster.stub.requestCount(forChat: "chat-11") == 2)
        await cluster.close()
    }

    // MARK: Coherent L1

    @Test func aRefreshOnOneInstanceEvictsTheOlderCopyFromTheOthers() async throws {
        let cluster = try await Cluster(instances: 2)
        let (a, b) = (cluster.instances[0], cluster.instances[1])
        let chat = Self.chat("chat-3")
        #expect(Self.source(await a.reader.read(chat)) == .upstream)
        #expect(Self.source(await b.reader.read(chat)) == .cache)
        #expect(Self.source(await a.reader.read(chat)) == .memory)
        #expect(Self.source(await b.reader.read(chat)) == .memory)

        #expect(await cluster.stub.bump(chat: "chat-3") == 2)
        let result = await b.coordinator.refresh(chat)
        guard case .fetched(let refreshed) = result else {
            Issue.record("B's manual refresh did not fetch: \(result)")
            await cluster.close()
            return
        }
        #expect(refreshed.version == 2)

        // A's next reads come from Redis once B's announcement arrived (about one poll interval).
        var last: ReadOutcome?
        let converged = await eventually(timeout: .seconds(5)) {
            last = await a.reader.read(chat)
            return last.map(Self.version) == 2
        }
        #expect(converged, "A still reads \(String(describing: last))")
        #expect(Self.source(try #require(last)) == .cache)
        #expect(await a.cache.peekL1(chat)?.version == 2)
        #expect(await a.feed.statistics.evicted >= 1)
        // B's own announcement is skipped; B keeps serving its copy from memory.
        #expect(await eventually(timeout: .seconds(5)) { await b.feed.statistics.ownSkipped >= 1 })
        #expect(Self.source(await b.reader.read(chat)) == .memory)
        #expect(await cluster.stub.requestCount(forChat: "chat-3") == 2)
        await cluster.close()
    }

    @Test func anAnnouncementEvictsOnlyOlderCopies() async throws {
        let cluster = try await Cluster(instances: 1)
        let a = cluster.instances[0]
        let chat = Self.chat("chat-5")
        guard case .entry(let entry, _, _) = await a.reader.read(chat) else {
            Issue.record("cold read failed")
            await cluster.close()
            return
        }
        // A's own announcement of the cold read is read first, so each count below is one entry.
        #expect(await eventually(timeout: .seconds(5)) { await a.feed.statistics.ownSkipped >= 1 })
        func announce(_ fetchedAt: Date, by instance: String) async throws {
            let before = await a.feed.statistics.entriesRead
            _ = try await cluster.redis.cli(
                "XADD", ParticipantsKeys.invalidations, "*", "@instance", instance, "chat-5", ISO8601Timestamp.string(from: fetchedAt))
            await a.feed.pollOnce()
            // pollOnce returns at once while the feed's own poll runs; that poll reads it then.
            #expect(await eventually(timeout: .seconds(5)) { await a.feed.statistics.entriesRead > before })
        }
        try await announce(entry.fetchedAt.addingTimeInterval(-60), by: "instance-z")
        #expect(await a.cache.peekL1(chat) == entry, "an older announcement must not evict")
        try await announce(entry.fetchedAt, by: "instance-z")
        #expect(await a.cache.peekL1(chat) == entry, "the same fetch must not evict")
        try await announce(entry.fetchedAt.addingTimeInterval(60), by: a.name)
        #expect(await a.cache.peekL1(chat) == entry, "its own announcement must not evict")
        try await announce(entry.fetchedAt.addingTimeInterval(60), by: "instance-z")
        #expect(await a.cache.peekL1(chat) == nil, "a newer announcement evicts")
        await cluster.close()
    }

    @Test func afterAnOutageThatLostTheStreamOlderL1EntriesAreDropped() async throws {
        let cluster = try await Cluster(instances: 2)
        let (a, b) = (cluster.instances[0], cluster.instances[1])
        for id in ["chat-21", "chat-22"] {
            _ = await a.reader.read(Self.chat(id))
            _ = await b.reader.read(Self.chat(id))
        }
        // A has read the stream (its own announcements) before the outage.
        #expect(await eventually(timeout: .seconds(5)) { await a.feed.statistics.ownSkipped >= 2 })

        await cluster.redis.kill()
        for instance in cluster.instances {
            #expect(await eventually(timeout: .seconds(10)) { await instance.supervisor.state != .ready })
        }
        // B refreshes while Redis is away: kept for write-back, written when Redis is back.
        _ = await cluster.stub.bump(chat: "chat-21")
        guard case .fetched(let refreshed) = await b.coordinator.refresh(Self.chat("chat-21")) else {
            Issue.record("B's refresh during the outage failed")
            await cluster.close()
            return
        }
        #expect(refreshed.version == 2)
        #expect(await a.cache.peekL1(Self.chat("chat-21"))?.version == 1)

        // Restarted without persistence: the stream A read is gone, so A cannot know what it missed.
        try await cluster.redis.restart()
        let dropped = await eventually(timeout: .seconds(10)) {
            let first = await a.cache.peekL1(Self.chat("chat-21"))
            let second = await a.cache.peekL1(Self.chat("chat-22"))
            return first == nil && second == nil
        }
        #expect(dropped)
        #expect(await a.feed.statistics.gaps >= 1)
        let converged = await eventually(timeout: .seconds(10)) {
            Self.version(await a.reader.read(Self.chat("chat-21"))) == 2
        }
        #expect(converged)
        await cluster.close()
    }
}
