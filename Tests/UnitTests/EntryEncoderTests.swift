import ChatRuntime
import Foundation
import Testing

@testable import Actors

/// The sized, single-allocation encoder of ``EntryCodec`` against a plain reference written
/// with ``JSONWriter``: same bytes, exact size, for every kind of string.
@Suite("EntryCodec sized encoder")
struct EntryEncoderTests {
    /// What the codec wrote before it sized its output: one growing buffer.
    static func reference(_ entry: ParticipantsEntry, closing: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.appendRaw(#"{"chat_id":"#)
        writer.appendString(entry.chatID.rawValue)
        writer.appendRaw(#","participants":["#)
        for (index, participant) in entry.participants.enumerated() {
            if index > 0 { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            writer.appendRaw(#"{"user_id":"#)
            writer.appendString(participant.userID)
            writer.appendRaw(#","display_name":"#)
            writer.appendString(participant.displayName)
            writer.appendRaw(#","avatar_url":"#)
            writer.appendString(orNull: participant.avatarURL)
            writer.appendRaw(#","role":"#)
            writer.appendString(participant.role)
            writer.appendRaw(ascii: UInt8(ascii: "}"))
        }
        writer.appendRaw(#"],"version":"#)
        writer.appendInteger(entry.version)
        writer.appendRaw(#","fetched_at":"#)
        writer.appendTimestamp(entry.fetchedAt)
        return writer.bytes + Array(closing.utf8)
    }

    static let pieces = [
        "", "a", "plain ascii", "quote\"", "back\\slash", "\u{0}", "\u{1F}", "tab\tnew\nline", "é", "😀",
        "日本語", "\u{7F}", "</script>", String(repeating: "long ", count: 40),
    ]

    static func randomEntry(_ random: inout SeededRandom) -> ParticipantsEntry {
        func text() -> String {
            (0..<Int.random(in: 0...4, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
        }
        let participants = (0..<Int.random(in: 0...25, using: &random)).map { _ in
            Participant(
                userID: text(), displayName: text(), avatarURL: Bool.random(using: &random) ? nil : text(), role: text()
            )
        }
        return ParticipantsEntry(
            chatID: ChatID(validating: "chat-\(random.next() % 1_000_000)")!, participants: participants,
            version: Int64(bitPattern: random.next()) >> Int64.random(in: 0...63, using: &random),
            fetchedAt: Date(timeIntervalSince1970: Double(random.next() % 4_000_000_000_000) / 1000))
    }

    @Test func matchesTheReferenceOnRandomEntries() {
        var random = SeededRandom(seed: 7)
        for _ in 0..<500 {
            let entry = Self.randomEntry(&random)
            let redis = EntryCodec.encodeForRedis(entry)
            #expect(redis == Self.reference(entry, closing: "}"))
            let response = EntryCodec.encodeResponse(entry, stale: true, source: .upstream)
            #expect(response == Self.reference(entry, closing: #","stale":true,"source":"upstream"}"#))
        }
    }

    @Test func plainEntriesAreSizedExactly() {
        var random = SeededRandom(seed: 11)
        for _ in 0..<200 {
            let drawn = Self.randomEntry(&random)
            let entry = ParticipantsEntry(
                chatID: drawn.chatID,
                participants: drawn.participants.map { participant in
                    var plain = participant
                    plain.displayName = "User \(random.next() % 1000) é 😀 日本語"
                    plain.userID = "u-\(random.next())"
                    plain.role = "member"
                    plain.avatarURL = plain.avatarURL == nil ? nil : "https://avatars.invalid/\(random.next()).png"
                    return plain
                }, version: drawn.version, fetchedAt: drawn.fetchedAt)
            let redis = EntryCodec.encodeForRedis(entry)
            #expect(redis == Self.reference(entry, closing: "}"))
            // One allocation of the exact size: no slack beyond the allocator's rounding.
            #expect(redis.capacity - redis.count < 32)
        }
    }

    @Test func nonContiguousStringsAreEncodedToo() {
        let text = String("quote\" and \u{1}".reversed().reversed())
        let entry = ParticipantsEntry(
            chatID: ChatID(validating: "c")!,
            participants: [Participant(userID: text, displayName: text, avatarURL: text, role: text)],
            version: -1, fetchedAt: Date(timeIntervalSince1970: 0))
        #expect(EntryCodec.encodeForRedis(entry) == Self.reference(entry, closing: "}"))
    }

    @Test func byteArrayWriterWritesWhatItIsGiven() {
        let bytes = ByteArrayWriter.makeArray(capacity: 16) { writer in
            writer.append(UInt8(ascii: "a"))
            writer.append("bc")
            writer.append([UInt8(ascii: "d")])
            writer.append(utf8: "é")
            #expect(writer.count == 6)
            #expect(writer.remainingCapacity == 10)
        }
        #expect(bytes == Array("abcdé".utf8))
        #expect(ByteArrayWriter.makeArray(capacity: 0) { _ in }.isEmpty)
    }

    @Test func timestampsWriteTheSameToEverySink() {
        let date = Date(timeIntervalSince1970: 1_800_000_000.123)
        var array: [UInt8] = []
        ISO8601Timestamp.append(date, to: &array)
        let written = ByteArrayWriter.makeArray(capacity: ISO8601Timestamp.length) {
            ISO8601Timestamp.write(date, to: &$0)
        }
        #expect(written == array)
        #expect(array.count == ISO8601Timestamp.length)
    }
}
