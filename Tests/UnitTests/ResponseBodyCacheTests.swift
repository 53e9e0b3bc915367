import Foundation
import Testing

@testable import Actors

/// Reused response bodies are always exactly what the encoder writes for the entry served.
@Suite("ResponseBodyCache")
struct ResponseBodyCacheTests {
    static func entry(
        _ chat: String = "chat-1", version: Int64 = 1, name: String = "Ada", fetchedAt: Double = 1_800_000_000.5
    )
        -> ParticipantsEntry
    {
        ParticipantsEntry(
            chatID: ChatID(validating: chat)!,
            participants: [Participant(userID: "u-1", displayName: name, avatarURL: nil, role: "owner")],
            version: version, fetchedAt: Date(timeIntervalSince1970: fetchedAt))
    }

    @Test func bodiesMatchTheEncoderForEveryVariant() {
        let bodies = ResponseBodyCache(capacity: 4)
        let entry = Self.entry()
        for _ in 0..<2 {
            for stale in [false, true] {
                for source in ReadSource.allCases {
                    #expect(
                        bodies.body(for: entry, stale: stale, source: source)
                            == EntryCodec.encodeResponse(entry, stale: stale, source: source))
                }
            }
        }
        #expect(bodies.count == 1)
    }

    @Test func aChangedEntryIsEncodedAgain() {
        let bodies = ResponseBodyCache(capacity: 4)
        _ = bodies.body(for: Self.entry(), stale: false, source: .memory)
        for changed in [
            Self.entry(version: 2), Self.entry(name: "Grace"), Self.entry(fetchedAt: 1_800_000_001.5),
        ] {
            #expect(
                bodies.body(for: changed, stale: false, source: .memory)
                    == EntryCodec.encodeResponse(changed, stale: false, source: .memory))
        }
    }

    @Test func anEqualEntryFromElsewhereReusesTheBody() {
        let bodies = ResponseBodyCache(capacity: 4)
        let first = bodies.body(for: Self.entry(), stale: false, source: .cache)
        // A separately decoded, equal entry (a Redis hit) gets the same bytes.
        let decoded = try? EntryCodec.decodeFromRedis(EntryCodec.encodeForRedis(Self.entry()))
        #expect(decoded == Self.entry())
        #expect(bodies.body(for: decoded!, stale: false, source: .cache) == first)
    }

    @Test func isBoundedAndCanBeOff() {
        let bodies = ResponseBodyCache(capacity: 2)
        for number in 1...5 { _ = bodies.body(for: Self.entry("chat-\(number)"), stale: false, source: .memory) }
        #expect(bodies.count == 2)
        let off = ResponseBodyCache(capacity: 0)
        #expect(
            off.body(for: Self.entry(), stale: true, source: .memory)
                == EntryCodec.encodeResponse(Self.entry(), stale: true, source: .memory))
        #expect(off.count == 0)
    }

    @Test func capacityFollowsTheL1WithinBoundsAndStaysOnWithTheL1Off() {
        #expect(ParticipantsRoutes.responseBodyCapacity(l1Size: 0) == 1024)
        #expect(ParticipantsRoutes.responseBodyCapacity(l1Size: 5000) == 5000)
        #expect(
            ParticipantsRoutes.responseBodyCapacity(l1Size: 100_000) == ParticipantsRoutes.defaultResponseBodyCapacity)
    }
}
