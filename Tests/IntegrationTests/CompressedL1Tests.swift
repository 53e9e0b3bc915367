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
        guard case .entry(let entry, _, .upstream) = await fixture.reader.read(chat) else {
            Issue.record("cold read failed")
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
        guard case .entry(let entry, _, .upstream) = await fixture.reader.read(chat) else {
            Issue.record("cold read failed")
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
}
