import ChatRuntime
import Foundation
import Testing

@testable import Actors

/// One stored form of an entry from upstream to the client: what the upstream parser copies,
/// what Redis holds, what the L1 keeps and what a read answers are the same bytes.
@Suite("Stored form")
struct StoredFormTests {
    static let fetchedAt = Date(timeIntervalSince1970: 1_795_575_600.123)
    static let chat = ChatID(validating: "chat-1")!
    static let members = [
        Participant(userID: "u1", displayName: "Ada", avatarURL: "https://img/1.png", role: "owner"),
        Participant(userID: "u2", displayName: "Linus", avatarURL: nil, role: "member"),
    ]

    static func address(_ bytes: [UInt8]) -> UnsafeRawPointer? {
        bytes.withUnsafeBytes { $0.baseAddress }
    }

    @Test func theStoredFormReadBackIsKeptAsItIsNotCopied() throws {
        let entry = ParticipantsEntry(
            chatID: Self.chat, participants: Self.members, version: 3, fetchedAt: Self.fetchedAt)
        let bytes = EntryCodec.encodeForRedis(entry)
        let read = try EntryCodec.decodeFromRedis(bytes)
        #expect(read == entry)
        #expect(Self.address(read.stored) == Self.address(bytes))
        #expect(read.participants == Self.members)
    }

    @Test func theReaderOfTheStoredFormTakesExactlyTheEntriesWithoutEscapes() throws {
        var random = SeededRandom(seed: 11)
        var plain = 0
        for _ in 0..<500 {
            let entry = EntryEncoderTests.randomEntry(&random)
            let bytes = EntryCodec.encodeForRedis(entry)
            let needsEscape = bytes.contains(UInt8(ascii: "\\"))
            if !needsEscape { plain += 1 }
            #expect((EntryParser.storedForm(bytes) != nil) == !needsEscape)
            let read = try EntryCodec.decodeFromRedis(bytes)
            #expect(read.stored == bytes)
            #expect(read.chatID == entry.chatID && read.version == entry.version && read.fetchedAt == entry.fetchedAt)
            #expect(read.participants == entry.participants)
        }
        // Both branches are exercised.
        #expect(plain > 20 && plain < 480)
    }

    @Test(arguments: [
        // Whitespace, another key order, unknown keys, an escape where none is needed, other
        // spellings of the time: all valid, none the stored form.
        #"{ "chat_id": "chat-1", "participants": [{"user_id":"u1","display_name":"Ada","avatar_url":"https://img/1.png","role":"owner"},{"user_id":"u2","display_name":"Linus","avatar_url":null,"role":"member"}], "version": 3, "fetched_at": "2026-11-25T05:00:00.123Z" }"#,
        #"{"version":3,"fetched_at":"2026-11-25T05:00:00.123Z","chat_id":"chat-1","participants":[{"role":"owner","user_id":"u1","display_name":"Ada","avatar_url":"https://img/1.png"},{"display_name":"Linus","user_id":"u2","role":"member"}]}"#,
        #"{"chat_id":"chat-1","extra":{"a":[1,2]},"participants":[{"user_id":"u1","display_name":"Ada","avatar_url":"https://img/1.png","role":"owner","x":1},{"user_id":"u2","display_name":"Linus","avatar_url":null,"role":"member"}],"version":3,"fetched_at":"2026-11-25T05:00:00.123Z"}"#,
        #"{"chat_id":"chat-1","participants":[{"user_id":"\u0075\u0031","display_name":"Ada","avatar_url":"https:\/\/img\/1.png","role":"owner"},{"user_id":"u2","display_name":"Linus","avatar_url":null,"role":"member"}],"version":3,"fetched_at":"2026-11-25T05:00:00.123Z"}"#,
        #"{"chat_id":"chat-1","participants":[{"user_id":"u1","display_name":"Ada","avatar_url":"https://img/1.png","role":"owner"},{"user_id":"u2","display_name":"Linus","avatar_url":null,"role":"member"}],"version":3,"fetched_at":"2026-11-25t05:00:00.123z"}"#,
        #"{"chat_id":"chat-1","participants":[{"user_id":"u1","display_name":"Ada","avatar_url":"https://img/1.png","role":"owner"},{"user_id":"u2","display_name":"Linus","avatar_url":null,"role":"member"}],"version":3,"fetched_at":"2026-11-25T06:00:00.123+01:00"}"#,
    ])
    func otherSpellingsAreReadAndWrittenAgainInTheStoredForm(_ text: String) throws {
        let bytes = Array(text.utf8)
        #expect(EntryParser.storedForm(bytes) == nil)
        let read = try EntryCodec.decodeFromRedis(bytes)
        let expected = ParticipantsEntry(
            chatID: Self.chat, participants: Self.members, version: 3,
            fetchedAt: ISO8601Timestamp.date(from: "2026-11-25T05:00:00.123Z")!)
        #expect(read == expected)
        #expect(read.stored == EntryCodec.encodeForRedis(expected))
    }

    @Test(arguments: [
        // Cut, a control character, invalid UTF-8 and a trailing byte: refused by both readers.
        #"{"chat_id":"chat-1","participants":[],"version":3,"fetched_at":"2026-11-25T05:00:00.123Z""#,
        "{\"chat_id\":\"chat-1\",\"participants\":[{\"user_id\":\"u\u{1}\",\"display_name\":\"A\",\"avatar_url\":null,\"role\":\"r\"}],\"version\":3,\"fetched_at\":\"2026-11-25T05:00:00.123Z\"}",
        #"{"chat_id":"chat-1","participants":[],"version":3,"fetched_at":"2026-11-25T05:00:00.123Z"}x"#,
        #"{"chat_id":"chat-1","participants":[],"version":03,"fetched_at":"2026-11-25T05:00:00.123Z"}"#,
    ])
    func brokenStoredFormsAreRefused(_ text: String) {
        let bytes = Array(text.utf8)
        #expect(EntryParser.storedForm(bytes) == nil)
        #expect(EntryCodecTests.decodeFailure(bytes) != nil)
    }

    @Test func invalidUTF8InAStringIsRefusedByTheStoredFormReader() {
        let bytes =
            Array(#"{"chat_id":"chat-1","participants":[{"user_id":""#.utf8) + [0xC3, 0x28]
            + Array(
                #"","display_name":"A","avatar_url":null,"role":"r"}],"version":3,"fetched_at":"2026-11-25T05:00:00.123Z"}"#
                    .utf8)
        #expect(EntryParser.storedForm(bytes) == nil)
        #expect(EntryCodecTests.decodeFailure(bytes) != nil)
    }

    @Test(arguments: ReadSource.allCases, [false, true])
    func anAnswerIsTheStoredFormWithStaleAndSourceBeforeTheBrace(_ source: ReadSource, _ stale: Bool) {
        let entry = ParticipantsEntry(
            chatID: Self.chat, participants: Self.members, version: 3, fetchedAt: Self.fetchedAt)
        let answer = EntryCodec.encodeResponse(entry, stale: stale, source: source)
        let suffix = Array(#","stale":\#(stale),"source":"\#(source.rawValue)"}"#.utf8)
        #expect(Array(answer.prefix(entry.stored.count - 1)) == Array(entry.stored.dropLast()))
        #expect(Array(answer.suffix(from: entry.stored.count - 1)) == suffix)
    }

    @Test func upstreamMembersAreCopiedInTheStoredFormWhateverTheirSpelling() throws {
        // Keys in another order, an unknown key, a missing avatar, whitespace, escapes (one
        // needed, one not) and non-ASCII text: the members come out as EntryCodec writes them.
        let body = Array(
            #"""
            { "chat_id" : "chat-1", "version" : 3, "participants" : [
              { "role": "owner", "display_name": "Ad\u0061 \"A\"", "user_id": "u1", "avatar_url": "https:\/\/img/1.png", "karma": [1, {"x": null}] },
              { "user_id": "u2", "display_name": "Łukasz 😀", "role": "member" }
            ] }
            """#.utf8)
        let chat = try #require(UpstreamParser.chat(body))
        let members = [
            Participant(userID: "u1", displayName: "Ada \"A\"", avatarURL: "https://img/1.png", role: "owner"),
            Participant(userID: "u2", displayName: "Łukasz 😀", avatarURL: nil, role: "member"),
        ]
        #expect(chat.participantsJSON == EntryCodec.participantsJSON(members))
        #expect(chat.participants == members)
        #expect(chat == UpstreamChat(chatID: Self.chat, participants: members, version: 3))
        let entry = ParticipantsEntry(chat, fetchedAt: Self.fetchedAt)
        #expect(
            entry == ParticipantsEntry(chatID: Self.chat, participants: members, version: 3, fetchedAt: Self.fetchedAt))
    }

    @Test func utf8ValidationAgreesWithTheStandardLibrary() {
        var random = SeededRandom(seed: 5)
        let interesting: [UInt8] = [
            0x00, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0x9F, 0xA0,
            0x8F, 0x90,
        ]
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 0...6, using: &random)).map { _ in
                Bool.random(using: &random)
                    ? interesting.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            #expect(UTF8Validation.isValid(bytes[...]) == expected, "\(bytes)")
        }
    }
}
