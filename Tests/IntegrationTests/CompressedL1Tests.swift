import ChatRuntime
import Foundation
import StubUpstream
import TestSupport
import Testing

@testable import Actors

/// The L1 keeps each entry's stored form compressed while Redis keeps the plain bytes: a hit
/// answers what the plain entry would, and an L1 copy that does not decompress is dropped and
/// read again from Redis.
@Suite("Compressed L1", .serialized, .timeLimit(.minutes(2)))
struct CompressedL1Tests {
    typealias Fixture = ParticipantsReadPathTests.Fixture
    static func chat(_ id: String) -> ChatID { ChatID(validating: id)! }

    @Test func theL1KeepsABlockAndRedisThePlainStoredForm() async throws {
        let fixture = try await Fixture()
        let chat = Self.chat("chat-1")
        guard let entry = await fixture.readFromUpstream(chat) else {
            await fixture.close()
            return
        }
        let inRedis = try await fixture.redis.cli("GET", "participants:v1:{chat-1}")
        #expect(Array(inRedis.trimmingCharacters(in: .whitespacesAndNewlines).utf8) == entry.stored)

        let fresh = try #require(await fixture.cache.freshInMemory(chat))
        #expect(fresh.version == entry.version && fresh.fetchedAt == entry.fetchedAt)
        #expect(fresh.compressedCount < entry.stored.count)
        #expect(
            try EntryCodec.encodeResponse(fresh, stale: false, source: .memory)
                == EntryCodec.encodeResponse(entry, stale: false, source: .memory))
        #expect(await fixture.cache.peekL1(chat) == entry)
        #expect(await fixture.reader.read(chat) == .entry(entry, stale: false, source: .memory))
        await fixture.close()
    }

    @Test func anL1CopyThatDoesNotDecompressIsDroppedAndReadFromRedis() async throws {
        let fixture = try await Fixture()
        let chat = Self.chat("chat-2")
        guard let entry = await fixture.readFromUpstream(chat) else {
            await fixture.close()
            return
        }
        let block = LZ4Block(compressing: entry.stored)
        let corrupt = CompressedEntry(
            version: entry.version, fetchedAt: entry.fetchedAt,
            stored: LZ4Block(compressed: Array(block.compressed.prefix(4)), count: block.count))
        await fixture.cache.putInL1(corrupt, for: chat)

        // The read route's immediate path declines it (the body does not decompress) ...
        let fresh = try #require(await fixture.cache.freshInMemory(chat))
        #expect(throws: LZ4Error.self) { try EntryCodec.encodeResponse(fresh, stale: false, source: .memory) }
        #expect(await fixture.cache.peekL1(chat) == nil)
        // ... and the lookup drops it, reads Redis and keeps a good copy again.
        #expect(await fixture.reader.read(chat) == .entry(entry, stale: false, source: .cache))
        #expect(await fixture.cache.peekL1(chat) == entry)
        #expect(await fixture.reader.read(chat) == .entry(entry, stale: false, source: .memory))
        #expect(await fixture.stub.requestCount(forChat: "chat-2") == 1)
        await fixture.close()
    }

    /// A sync's entries refresh what the L1 holds and fill it while there is room, but never
    /// evict a chat a reader put there.
    @Test func aSyncBatchUpdatesTheL1InPlaceAndEvictsNothing() async throws {
        let fixture = try await Fixture(l1Capacity: 3)
        var read: [ParticipantsEntry] = []
        for id in ["chat-1", "chat-2"] {
            guard let entry = await fixture.readFromUpstream(Self.chat(id)) else {
                await fixture.close()
                return
            }
            read.append(entry)
        }
        let bumped = try #require(await fixture.stub.bump(chat: "chat-1"))
        let chats = ["chat-1", "chat-3", "chat-4"].map(Self.chat)
        let response = try await fixture.upstream.batchGet(chats)
        let fetchedAt = fixture.clock.now
        let synced = BatchAnswer(requested: chats, response: response).found.map {
            ParticipantsEntry($0, fetchedAt: fetchedAt)
        }
        try #require(synced.map(\.chatID) == chats)
        #expect(await fixture.cache.storeBatch(synced, notFound: []) == .written)

        // chat-1 is refreshed in place, chat-3 takes the one free slot, chat-4 finds no room; both
        // chats the reader read are still there.
        #expect(await fixture.cache.peekL1(Self.chat("chat-1")) == synced[0])
        #expect(await fixture.cache.peekL1(Self.chat("chat-1"))?.version == bumped)
        #expect(await fixture.cache.peekL1(Self.chat("chat-2")) == read[1])
        #expect(await fixture.cache.peekL1(Self.chat("chat-3")) == synced[1])
        #expect(await fixture.cache.peekL1(Self.chat("chat-4")) == nil)
        // Redis has all three, and a read of chat-4 takes it from there (filling the L1 as reads do).
        #expect(await fixture.reader.read(Self.chat("chat-4")) == .entry(synced[2], stale: false, source: .cache))
        #expect(await fixture.cache.peekL1(Self.chat("chat-4")) == synced[2])
        #expect(await fixture.stub.requestCount(forChat: "chat-4") == 1)
        await fixture.close()
    }
}
