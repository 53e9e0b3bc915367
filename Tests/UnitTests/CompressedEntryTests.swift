import ChatRuntime
import Foundation
import Testing

@testable import Actors

/// The L1's form of an entry: its stored form as an LZ4 block. A hit answers the same bytes as
/// the plain entry would, and a block that does not decompress is an error, not an answer.
@Suite("Compressed entry")
struct CompressedEntryTests {
    static let chat = ChatID(validating: "chat-1")!

    @Test func givesBackTheEntryAndTheSameAnswersAsThePlainForm() throws {
        var random = SeededRandom(seed: 21)
        for _ in 0..<300 {
            let entry = EntryEncoderTests.randomEntry(&random)
            let compressed = CompressedEntry(entry)
            #expect(compressed.version == entry.version && compressed.fetchedAt == entry.fetchedAt)
            let back = try compressed.entry(of: entry.chatID)
            #expect(back == entry)
            #expect(back.stored == entry.stored)
            for source in [ReadSource.memory, .cache, .upstream] {
                for stale in [false, true] {
                    #expect(
                        try EntryCodec.encodeResponse(compressed, stale: stale, source: source)
                            == EntryCodec.encodeResponse(entry, stale: stale, source: source))
                }
            }
        }
    }

    @Test func theAnswerIsExactlySized() throws {
        let entry = ParticipantsEntry(
            chatID: Self.chat,
            participants: (0..<20).map {
                Participant(
                    userID: "u-\($0)", displayName: "User \($0)", avatarURL: "https://a.invalid/\($0)", role: "member")
            },
            version: 7, fetchedAt: Date(timeIntervalSince1970: 1_795_575_600.5))
        let compressed = CompressedEntry(entry)
        #expect(compressed.compressedCount * 2 < entry.stored.count)
        let body = try EntryCodec.encodeResponse(compressed, stale: false, source: .memory)
        #expect(body.count == entry.stored.count - 1 + #","stale":false,"source":"memory"}"#.utf8.count)
        #expect(body.capacity < body.count + 32)
    }

    @Test func anEntryFromUpstreamComesCompressedAndTheL1SharesItsBlock() throws {
        let members = [Participant(userID: "u1", displayName: "Ada", avatarURL: nil, role: "owner")]
        let fetched = ParticipantsEntry(
            UpstreamChat(chatID: Self.chat, participants: members, version: 2), fetchedAt: Date())
        let block = try #require(fetched.compressedStored)
        #expect(try block.decompressed() == fetched.stored)
        let compressed = CompressedEntry(fetched)
        #expect(compressed.stored == block)
        #expect(
            compressed.stored.compressed.withUnsafeBufferPointer { $0.baseAddress }
                == block.compressed.withUnsafeBufferPointer { $0.baseAddress })
        // The block is not part of the entry's value; an entry read back from the L1 keeps it.
        let plain = ParticipantsEntry(
            chatID: Self.chat, participants: members, version: 2, fetchedAt: fetched.fetchedAt)
        #expect(plain.compressedStored == nil)
        #expect(plain == fetched && plain.hashValue == fetched.hashValue)
        #expect(try compressed.entry(of: Self.chat).compressedStored == block)
    }

    @Test func aBlockThatDoesNotDecompressIsAnError() {
        let entry = ParticipantsEntry(chatID: Self.chat, participants: [], version: 1, fetchedAt: Date())
        let valid = LZ4Block(compressing: entry.stored)
        for block in [
            LZ4Block(compressed: Array(valid.compressed.dropLast()), count: valid.count),
            LZ4Block(compressed: valid.compressed, count: valid.count + 1),
            LZ4Block(compressed: [], count: 0),
        ] {
            let compressed = CompressedEntry(version: 1, fetchedAt: entry.fetchedAt, stored: block)
            #expect(throws: LZ4Error.self) { try compressed.entry(of: Self.chat) }
            #expect(throws: LZ4Error.self) {
                try EntryCodec.encodeResponse(compressed, stale: false, source: .memory)
            }
        }
    }
}
