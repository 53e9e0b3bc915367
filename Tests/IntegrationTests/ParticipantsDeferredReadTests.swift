import Foundation
import Testing
import TestSupport

@testable import Actors
@testable import Runtime

/// The read route's deferred path (``ParticipantsReader/freshFromRedis(_:completion:)``): a
/// chat Redis holds fresh is answered from the `GET`'s reply callback with what ``read(_:)``
/// would answer; everything else is declined to ``read(_:)`` or not asked at all.
@Suite("Participants deferred read", .serialized, .timeLimit(.minutes(2)))
struct ParticipantsDeferredReadTests {
    typealias Fixture = ParticipantsReadPathTests.Fixture

    /// What the deferred path did: asked Redis or not, and the entry it answered with.
    enum Deferred: Equatable {
        case notAsked
        case declined
        case answered(ParticipantsEntry)
    }

    /// Runs the deferred read as the HTTP server does: on the loop thread, no actor hop.
    static func deferredRead(_ fixture: Fixture, _ chat: ChatID) async -> Deferred {
        let reader = fixture.reader
        let loop = fixture.loop
        return await withCheckedContinuation { continuation in
            Task(executorPreference: loop) {
                let asked = reader.freshFromRedis(chat) { entry in
                    loop.preconditionInLoop()
                    continuation.resume(returning: entry.map(Deferred.answered) ?? .declined)
                }
                if !asked { continuation.resume(returning: .notAsked) }
            }
        }
    }

    static func chat(_ id: String) -> ChatID { ChatID(validating: id)! }

    @Test func withTheL1OffAFreshRedisEntryIsAnsweredAsReadWouldAnswerIt() async throws {
        let fixture = try await Fixture(l1Capacity: 0)
        let chat = Self.chat("chat-1")
        // Nothing in Redis yet: declined, and read(_:) fetches and writes it.
        #expect(await Self.deferredRead(fixture, chat) == .declined)
        guard case .entry(let fetched, false, .upstream) = await fixture.reader.read(chat) else {
            Issue.record("the first read did not fetch from upstream")
            await fixture.close()
            return
        }
        #expect(await Self.deferredRead(fixture, chat) == .answered(fetched))
        #expect(await fixture.reader.read(chat) == .entry(fetched, stale: false, source: .cache))
        #expect(await fixture.stub.requestCount(forChat: "chat-1") == 1)

        // Stale: declined, so read(_:) serves it stale and refreshes it.
        fixture.clock.advance(by: .seconds(901))
        #expect(await Self.deferredRead(fixture, chat) == .declined)
        // Entries written behind the cache are seen at once: the reply is decoded, not the memo.
        _ = try await fixture.redis.cli("SET", "participants:v1:{chat-1}", "not json")
        #expect(await Self.deferredRead(fixture, chat) == .declined)
        await fixture.close()
    }

    @Test func whatTheL1KnowsAndRedisAwayAreNotAsked() async throws {
        let fixture = try await Fixture()
        let chat = Self.chat("chat-2")
        _ = await fixture.reader.read(chat)
        // In the L1 (fresh or not): the immediate path or read(_:) answers.
        #expect(await Self.deferredRead(fixture, chat) == .notAsked)
        #expect(await fixture.reader.read(Self.chat("no-such-chat")) == .notFound)
        #expect(await Self.deferredRead(fixture, Self.chat("no-such-chat")) == .notAsked)
        // Cold for the L1, fresh in Redis: answered, and now in the L1.
        _ = await fixture.cache.dropL1(fetchedBefore: fixture.clock.now.addingTimeInterval(1))
        guard case .answered(let entry) = await Self.deferredRead(fixture, chat) else {
            Issue.record("a chat fresh in Redis was not answered")
            await fixture.close()
            return
        }
        #expect(await fixture.cache.peekL1(chat) == entry)

        await fixture.redis.kill()
        #expect(await eventually(timeout: .seconds(10)) { await fixture.supervisor.state != .ready })
        #expect(await Self.deferredRead(fixture, Self.chat("chat-3")) == .notAsked)
        await fixture.close()
    }

    /// A connection that dies with the `GET` in flight declines (read(_:) then degrades).
    @Test func aGetLostWithItsConnectionIsDeclined() async throws {
        let fixture = try await Fixture(l1Capacity: 0)
        let chat = Self.chat("chat-4")
        _ = await fixture.reader.read(chat)
        fixture.redis.freeze()
        let outcome = await Self.deferredRead(fixture, chat)
        fixture.redis.thaw()
        #expect(outcome == .declined)
        await fixture.close()
    }
}
