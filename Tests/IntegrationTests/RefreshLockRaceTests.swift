import Actors
import ChatRuntime
import Foundation
import Logging
import TestSupport
import Testing

/// The cross-instance single flight when the refresh lock is found free because another
/// instance just released it: the result that instance left in Redis is used, not fetched again.
/// Two instances (loop, supervisor, cache, coordinator, reader) on one redis-server, each with an
/// in-process upstream that counts its calls.
@Suite("Refresh lock taken just after a peer released it", .serialized, .timeLimit(.minutes(3)))
struct RefreshLockRaceTests {
    static let logger = Logger(label: "test.refresh-lock-race")

    /// Knows every chat except those named `missing-*`; counts calls per chat.
    final class CountingUpstream: ParticipantsUpstream {
        private let calls = AnnotatedMutex<[ChatID: Int]>([:])

        func count(_ chat: ChatID) -> Int { calls.withLock { $0[chat] ?? 0 } }

        func participants(of chat: ChatID) async throws(UpstreamError) -> UpstreamChat? {
            calls.withLock { $0[chat, default: 0] += 1 }
            // Let the other instance's readers interleave, as a network call would.
            await Task.yield()
            if chat.rawValue.hasPrefix("missing-") { return nil }
            return UpstreamChat(
                chatID: chat,
                participants: [Participant(userID: "u-1", displayName: "U", avatarURL: nil, role: "member")], version: 1
            )
        }

        func batchGet(_ chats: [ChatID]) async throws(UpstreamError) -> BatchGetResponse {
            throw UpstreamError(code: .rejected, message: "not used here")
        }

        func listChats(pageSize: Int, pageToken: String?) async throws(UpstreamError) -> ChatListPage {
            throw UpstreamError(code: .rejected, message: "not used here")
        }
    }

    /// A settable wall clock shared by both instances.
    final class TestClock: Sendable {
        private let current = AnnotatedMutex(Date(timeIntervalSince1970: 1_795_000_000))
        var now: Date { current.withLock { $0 } }
        func advance(by duration: Duration) { current.withLock { $0 = $0.addingTimeInterval(duration.timeInterval) } }
    }

    struct Instance {
        let loop: EventLoop
        let supervisor: RedisSupervisor
        let cache: ParticipantsCache
        let upstream = CountingUpstream()
        let coordinator: RefreshCoordinator
        let reader: ParticipantsReader
        let tasks: [Task<Void, any Error>]

        init(name: String, redis: RedisServer, clock: TestClock) async throws {
            loop = EventLoop(name: name)
            supervisor = RedisSupervisor(
                endpoint: redis.endpoint(), loop: loop,
                policy: .init(
                    maxRetries: 2, backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(100)),
                    probeInterval: .milliseconds(200)),
                connectionOptions: .init(connectTimeout: .milliseconds(500), commandTimeout: .milliseconds(2000)),
                random: SeededRandom(seed: 5), logger: RefreshLockRaceTests.logger)
            let coordination = InstanceCoordination(
                instanceID: name, refreshLockTTL: .seconds(5), refreshLockPollInterval: .milliseconds(10))
            cache = ParticipantsCache(
                supervisor: supervisor, loop: loop,
                settings: CacheSettings(
                    ttl: .seconds(3600), staleThreshold: .seconds(900), keep: .seconds(86_400),
                    notFoundTTL: .seconds(60),
                    l1Capacity: 1000),
                coordination: coordination, now: { clock.now }, logger: RefreshLockRaceTests.logger)
            coordinator = RefreshCoordinator(
                upstream: upstream, cache: cache, loop: loop, supervisor: supervisor, coordination: coordination,
                now: { clock.now }, logger: RefreshLockRaceTests.logger)
            reader = ParticipantsReader(cache: cache, coordinator: coordinator, lazyUpdate: false)
            let (supervisor, cache, coordinator) = (supervisor, cache, coordinator)
            tasks = [
                Task { try await supervisor.run() },
                Task { try await cache.run() },
                Task { try await coordinator.run() },
            ]
        }

        func close() async {
            for task in tasks.reversed() { task.cancel() }
            for task in tasks.reversed() { _ = try? await task.value }
            loop.stop()
        }
    }

    struct Pair {
        let redis: RedisServer
        let clock = TestClock()
        let a: Instance
        let b: Instance

        init() async throws {
            redis = try await RedisServer.start()
            a = try await Instance(name: "instance-a", redis: redis, clock: clock)
            b = try await Instance(name: "instance-b", redis: redis, clock: clock)
            for instance in [a, b] {
                try #require(await eventually(timeout: .seconds(10)) { await instance.supervisor.state == .ready })
            }
        }

        func close() async {
            await a.close()
            await b.close()
            redis.cleanup()
        }

        func lockHeld(_ chat: ChatID) async throws -> Bool {
            try await redis.cli("EXISTS", ParticipantsKeys.refreshLock(chat)).trimmingCharacters(
                in: .whitespacesAndNewlines) == "1"
        }
    }

    static func chat(_ id: String) -> ChatID { ChatID(validating: id)! }

    // MARK: Deterministic: the peer's result is already in Redis, the lock free

    @Test func aColdRefreshAdoptsTheEntryAPeerJustWroteInsteadOfCallingUpstream() async throws {
        let pair = try await Pair()
        let chat = Self.chat("chat-1")
        guard case .fetched(let entry) = await pair.a.coordinator.refresh(chat, replacing: .nothing) else {
            Issue.record("A's cold refresh did not fetch")
            await pair.close()
            return
        }
        #expect(pair.a.upstream.count(chat) == 1)
        #expect(try await pair.lockHeld(chat) == false)

        // B read nothing a moment earlier (its reader's miss) and now finds the lock free.
        #expect(await pair.b.coordinator.refresh(chat, replacing: .nothing) == .fetchedByPeer(entry))
        #expect(pair.b.upstream.count(chat) == 0)
        #expect(await pair.b.cache.peekL1(chat) == entry)
        #expect(try await pair.lockHeld(chat) == false, "the lock taken to look is released")

        // Replacing an older copy: the peer's entry is newer, so it answers too.
        let older = entry.fetchedAt.addingTimeInterval(-60)
        #expect(await pair.b.coordinator.refresh(chat, replacing: .entry(fetchedAt: older)) == .fetchedByPeer(entry))
        #expect(pair.b.upstream.count(chat) == 0)
        // Replacing that very entry: only newer will do.
        guard case .fetched = await pair.b.coordinator.refresh(chat, replacing: .entry(fetchedAt: entry.fetchedAt))
        else {
            Issue.record("replacing the peer's own entry must fetch")
            await pair.close()
            return
        }
        #expect(pair.b.upstream.count(chat) == 1)
        await pair.close()
    }

    @Test func anOperatorRefreshStillCallsUpstreamUnlessTheEntryIsFromAfterItsStart() async throws {
        let pair = try await Pair()
        let chat = Self.chat("chat-2")
        guard case .fetched = await pair.a.coordinator.refresh(chat) else {
            Issue.record("A's refresh did not fetch")
            await pair.close()
            return
        }
        pair.clock.advance(by: .seconds(1))
        guard case .fetched = await pair.b.coordinator.refresh(chat, replacing: .callStart) else {
            Issue.record("B's operator refresh took an entry fetched before it began")
            await pair.close()
            return
        }
        #expect(pair.b.upstream.count(chat) == 1)
        #expect(try await pair.lockHeld(chat) == false)
        await pair.close()
    }

    @Test func aColdRefreshAdoptsAPeersNotFoundButAnOperatorRefreshAsksUpstream() async throws {
        let pair = try await Pair()
        let chat = Self.chat("missing-1")
        #expect(await pair.a.coordinator.refresh(chat, replacing: .nothing) == .notFound)
        #expect(pair.a.upstream.count(chat) == 1)

        #expect(await pair.b.coordinator.refresh(chat, replacing: .nothing) == .notFound)
        #expect(pair.b.upstream.count(chat) == 0)
        #expect(await pair.b.cache.lookup(chat) == .notFound, "adopted into B's not-found L1")

        // A marker carries no time: the operator's refresh cannot know it is from after its start.
        #expect(await pair.b.coordinator.refresh(chat, replacing: .callStart) == .notFound)
        #expect(pair.b.upstream.count(chat) == 1)
        await pair.close()
    }

    // MARK: Stress: cold readers on both instances at once

    @Test func coldReadersSpreadOverTwoInstancesCauseExactlyOneUpstreamCallPerChat() async throws {
        let pair = try await Pair()
        let rounds = 100
        var extraCalls: [String: Int] = [:]
        for round in 0..<rounds {
            let chat = Self.chat("cold-\(round)")
            let outcomes = await withTaskGroup(of: ReadOutcome.self) { group in
                for (index, instance) in [pair.a, pair.a, pair.a, pair.a, pair.b, pair.b, pair.b, pair.b].enumerated() {
                    let (reader, supervisor) = (instance.reader, instance.supervisor)
                    // Start times spread over a few Redis round trips, differently every round, so
                    // that some rounds have a reader that missed before the holder's write take
                    // the lock after its release. Round trips, not sleeps: they scale with the
                    // machine's speed.
                    let delay = (round * 3 + index) % 7
                    group.addTask {
                        for _ in 0..<delay { _ = try? await supervisor.send(RedisCommand("PING", [])) }
                        return await reader.read(chat)
                    }
                }
                return await group.reduce(into: [ReadOutcome]()) { $0.append($1) }
            }
            #expect(outcomes.count == 8)
            #expect(outcomes.allSatisfy { if case .entry = $0 { true } else { false } }, "round \(round): \(outcomes)")
            let calls = pair.a.upstream.count(chat) + pair.b.upstream.count(chat)
            if calls != 1 { extraCalls[chat.rawValue] = calls }
        }
        #expect(extraCalls.isEmpty, "chats fetched more than once: \(extraCalls)")
        await pair.close()
    }
}
