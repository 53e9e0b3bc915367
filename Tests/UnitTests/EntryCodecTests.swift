import Foundation
import Testing

@testable import Actors

@Suite("EntryCodec")
struct EntryCodecTests {
    static let fetchedAt = Date(timeIntervalSince1970: 1_795_575_600.123)

    static func entry(participants: [Participant]? = nil, version: Int64 = 7) -> ParticipantsEntry {
        ParticipantsEntry(
            chatID: ChatID(validating: "chat-1")!,
            participants: participants ?? [
                Participant(userID: "u1", displayName: "Ada", avatarURL: "https://img/1.png", role: "owner"),
                Participant(userID: "u2", displayName: "Linus", avatarURL: nil, role: "member"),
            ],
            version: version,
            fetchedAt: fetchedAt
        )
    }

    static func json(_ bytes: [UInt8]) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(bytes))
        return try #require(object as? [String: Any])
    }

    static func decodeFailure(_ text: String) -> EntryDecodingError? {
        decodeFailure(Array(text.utf8))
    }

    static func decodeFailure(_ bytes: [UInt8]) -> EntryDecodingError? {
        do {
            _ = try EntryCodec.decodeFromRedis(bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test func redisFormIsExactlyTheDocumentedJSON() {
        let bytes = EntryCodec.encodeForRedis(Self.entry())
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == #"{"chat_id":"chat-1","participants":[{"user_id":"u1","display_name":"Ada","avatar_url":"https://img/1.png","role":"owner"},{"user_id":"u2","display_name":"Linus","avatar_url":null,"role":"member"}],"version":7,"fetched_at":"2026-11-25T03:00:00.123Z"}"#
        )
    }

    @Test func redisFormRoundTrips() throws {
        let entry = Self.entry()
        #expect(try EntryCodec.decodeFromRedis(EntryCodec.encodeForRedis(entry)) == entry)
        let empty = Self.entry(participants: [], version: 0)
        #expect(try EntryCodec.decodeFromRedis(EntryCodec.encodeForRedis(empty)) == empty)
    }

    @Test(arguments: [Int64.min, -1, 0, 1, 9, 10, 1_234_567_890, Int64.max])
    func versionsRoundTripAcrossTheWholeRange(_ version: Int64) throws {
        let entry = Self.entry(version: version)
        let bytes = EntryCodec.encodeForRedis(entry)
        #expect(try EntryCodec.decodeFromRedis(bytes).version == version)
        #expect(String(decoding: bytes, as: UTF8.self).contains(#""version":\#(version),"#))
    }

    @Test(arguments: ReadSource.allCases, [false, true])
    func responseAddsStaleAndSource(_ source: ReadSource, _ stale: Bool) throws {
        let entry = Self.entry()
        let bytes = EntryCodec.encodeResponse(entry, stale: stale, source: source)
        let text = String(decoding: bytes, as: UTF8.self)
        let redis = String(decoding: EntryCodec.encodeForRedis(entry), as: UTF8.self)
        #expect(text == redis.dropLast() + #","stale":\#(stale),"source":"\#(source.rawValue)"}"#)

        let object = try Self.json(bytes)
        #expect(object["chat_id"] as? String == "chat-1")
        #expect(object["version"] as? Int == 7)
        #expect(object["fetched_at"] as? String == "2026-11-25T03:00:00.123Z")
        #expect(object["stale"] as? Bool == stale)
        #expect(object["source"] as? String == source.rawValue)
        let participants = try #require(object["participants"] as? [[String: Any]])
        #expect(participants.count == 2)
        #expect(participants[1]["avatar_url"] is NSNull)
    }

    static let trickyStrings: [String] = [
        #"he said "hi""#, #"back\slash"#, #"\""#, "line\nbreak", "cr\rlf", "tab\t", "\u{0}", "\u{1}", "\u{1F}",
        "\u{7F}", "\u{8}\u{C}", "👩‍👩‍👧 family", "日本語", "\u{2028}\u{2029}", "",
        String(decoding: [0xFF, 0xFE, 0x41, 0xC3], as: UTF8.self), "</script>", "a\u{0}b\u{1}c\"d\\e",
        String(repeating: "x\"", count: 500),
    ]

    @Test(arguments: trickyStrings)
    func escapesTrickyStringsIntoValidJSON(_ tricky: String) throws {
        let entry = Self.entry(participants: [
            Participant(userID: tricky, displayName: tricky, avatarURL: tricky, role: tricky)
        ])
        for bytes in [EntryCodec.encodeForRedis(entry), EntryCodec.encodeResponse(entry, stale: true, source: .memory)]
        {
            let object = try Self.json(bytes)
            let participant = try #require((object["participants"] as? [[String: Any]])?.first)
            #expect(participant["user_id"] as? String == tricky)
            #expect(participant["display_name"] as? String == tricky)
            #expect(participant["avatar_url"] as? String == tricky)
            #expect(participant["role"] as? String == tricky)
        }
        #expect(try EntryCodec.decodeFromRedis(EntryCodec.encodeForRedis(entry)) == entry)
    }

    @Test func controlCharactersUseUnicodeEscapesAndUTF8StaysRaw() {
        var writer = JSONWriter()
        writer.appendString("a\u{1}\n\u{1F}\"\\é😀")
        #expect(String(decoding: writer.bytes, as: UTF8.self) == #""a\u0001\u000a\u001f\"\\é😀""#)
    }

    @Test(arguments: [Int64.min, -10, -1, 0, 7, 100, Int64.max])
    func writerWritesIntegers(_ value: Int64) {
        var writer = JSONWriter()
        writer.appendInteger(value)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == String(value))
    }

    @Test func writerHandlesNonContiguousStrings() {
        // A bridged or lazily built string may not expose contiguous UTF-8.
        let text = String("quote\" and \u{1}".reversed().reversed())
        var writer = JSONWriter()
        writer.appendString(text)
        writer.appendString(orNull: nil)
        writer.appendBool(false)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == #""quote\" and \u0001"nullfalse"#)
    }

    @Test func codableConformanceAgreesWithTheCodec() throws {
        let entry = Self.entry()
        let viaEncoder = try JSONEncoder().encode(entry)
        #expect(try EntryCodec.decodeFromRedis(Array(viaEncoder)) == entry)
        let object = try Self.json(Array(viaEncoder))
        #expect(object["fetched_at"] as? String == "2026-11-25T03:00:00.123Z")
        #expect((object["participants"] as? [[String: Any]])?[1]["avatar_url"] is NSNull)
        let viaDecoder = try JSONDecoder().decode(ParticipantsEntry.self, from: Data(EntryCodec.encodeForRedis(entry)))
        #expect(viaDecoder == entry)
    }

    @Test func missingAvatarDecodesAsNil() throws {
        let text =
            #"{"chat_id":"c","participants":[{"user_id":"u","display_name":"d","role":"r"}],"version":1,"fetched_at":"2026-11-25T03:00:00.123Z"}"#
        let entry = try EntryCodec.decodeFromRedis(Array(text.utf8))
        #expect(entry.participants.first?.avatarURL == nil)
    }

    @Test(
        arguments: [
            ("", DecodingFailureReason.notJSON, "$"),
            ("not json", .notJSON, "$"),
            (#"{"chat_id":"c","participants":[],"version":1,"fetched_at":"2026-11-25T03:00:00.123Z""#, .notJSON, "$"),
            ("[]", .wrongType, "$"),
            ("null", .nullValue, "$"),
            (#"{"participants":[],"version":1,"fetched_at":"2026-11-25T03:00:00.123Z"}"#, .missingField, "$.chat_id"),
            (#"{"chat_id":"c","participants":[],"version":1}"#, .missingField, "$.fetched_at"),
            (
                #"{"chat_id":"c","participants":[],"version":"1","fetched_at":"2026-11-25T03:00:00.123Z"}"#, .wrongType,
                "$.version"
            ),
            (
                #"{"chat_id":"c","participants":[],"version":true,"fetched_at":"2026-11-25T03:00:00.123Z"}"#,
                .wrongType, "$.version"
            ),
            (
                #"{"chat_id":"c","participants":[],"version":null,"fetched_at":"2026-11-25T03:00:00.123Z"}"#,
                .nullValue, "$.version"
            ),
            (
                #"{"chat_id":"c","participants":[],"version":1.5,"fetched_at":"2026-11-25T03:00:00.123Z"}"#,
                .invalidValue, "$.version"
            ),
            (
                #"{"chat_id":"c","participants":[],"version":99999999999999999999,"fetched_at":"2026-11-25T03:00:00.123Z"}"#,
                .invalidValue, "$.version"
            ),
            (#"{"chat_id":"c","participants":[],"version":1,"fetched_at":"yesterday"}"#, .invalidValue, "$.fetched_at"),
            (#"{"chat_id":"c","participants":[],"version":1,"fetched_at":1795575600}"#, .wrongType, "$.fetched_at"),
            (
                #"{"chat_id":"a b","participants":[],"version":1,"fetched_at":"2026-11-25T03:00:00.123Z"}"#,
                .invalidValue, "$.chat_id"
            ),
            (
                #"{"chat_id":"c","participants":null,"version":1,"fetched_at":"2026-11-25T03:00:00.123Z"}"#, .nullValue,
                "$.participants"
            ),
            (
                #"{"chat_id":"c","participants":[{"user_id":"u","display_name":"d","avatar_url":null,"role":3}],"version":1,"fetched_at":"2026-11-25T03:00:00.123Z"}"#,
                .wrongType, "$.participants[0].role"
            ),
            (
                #"{"chat_id":"c","participants":[{"user_id":"u","avatar_url":null,"role":"r"}],"version":1,"fetched_at":"2026-11-25T03:00:00.123Z"}"#,
                .missingField, "$.participants[0].display_name"
            ),
        ] as [(String, DecodingFailureReason, String)])
    func decodingFailuresAreTyped(_ text: String, _ reason: DecodingFailureReason, _ path: String) throws {
        let failure = try #require(Self.decodeFailure(text))
        #expect(failure.reason == reason, "\(failure)")
        #expect(failure.path == path, "\(failure)")
        #expect(!failure.detail.isEmpty)
    }

    @Test func invalidUTF8IsNotJSON() throws {
        var bytes = Array(
            #"{"chat_id":"c","participants":[{"user_id":"u","display_name":"X","avatar_url":null,"role":"r"}],"version":1,"fetched_at":"2026-11-25T03:00:00.123Z"}"#
                .utf8)
        let index = try #require(bytes.firstIndex(of: UInt8(ascii: "X")))
        bytes[index] = 0xFF
        let failure = try #require(Self.decodeFailure(bytes))
        #expect(failure.reason == .notJSON, "\(failure)")
    }

    @Test func ageAndStaleness() {
        let entry = Self.entry()
        let now = Self.fetchedAt.addingTimeInterval(3600)
        #expect(entry.age(at: now) == .seconds(3600))
        #expect(!entry.isStale(at: now, threshold: .seconds(3600)))
        #expect(entry.isStale(at: now.addingTimeInterval(0.001), threshold: .seconds(3600)))
        #expect(entry.age(at: Self.fetchedAt.addingTimeInterval(-2)) == .seconds(-2))
        #expect(entry.age(at: Date(timeIntervalSince1970: .infinity)) == .milliseconds(9_000_000_000_000_000))
        #expect(entry.isStale(at: .distantFuture, threshold: .seconds(3600)))
    }

    @Test func entryFromUpstreamChatKeepsEveryField() {
        let source = Self.entry()
        let chat = UpstreamChat(chatID: source.chatID, participants: source.participants, version: source.version)
        #expect(ParticipantsEntry(chat, fetchedAt: Self.fetchedAt) == source)
    }
}

@Suite("EntryParser")
struct EntryParserTests {
    @Test func ignoresUnknownKeysAndWhitespace() throws {
        let text = """
            { "future": {"x": [1, 2, {"y": null}]}, "chat_id" : "c", "participants" : [
               {"extra": true, "user_id": "u", "display_name": "d\\u00e9", "avatar_url": "a", "role": "r"}
            ], "version": -3, "fetched_at": "2026-11-25T03:00:00.123Z" }
            """
        let entry = try EntryCodec.decodeFromRedis(Array(text.utf8))
        #expect(entry.version == -3)
        #expect(entry.participants == [Participant(userID: "u", displayName: "dé", avatarURL: "a", role: "r")])
    }

    @Test(arguments: [
        (#"{"chat_id":"c","participants":[],"version":1.0,"fetched_at":"2026-11-25T03:00:00.123Z"}"#, "$.version"),
        (#"{"chat_id":"c","participants":[],"version":1e2,"fetched_at":"2026-11-25T03:00:00.123Z"}"#, "$.version"),
    ])
    func refusesNonIntegerVersionsThatJSONDecoderWouldAccept(_ text: String, _ path: String) throws {
        let failure = try #require(EntryCodecTests.decodeFailure(text))
        #expect(failure.reason == .invalidValue)
        #expect(failure.path == path)
    }

    /// Whatever the hand-written parser accepts, the `Codable` conformance (JSONDecoder) accepts
    /// too and reads the same entry; whatever JSONDecoder refuses, the parser refuses.
    @Test func agreesWithTheCodableConformanceOnRandomMutations() {
        var random = SeededRandom(seed: 2026)
        let original = EntryCodec.encodeForRedis(
            EntryCodecTests.entry(participants: [
                Participant(userID: "u1", displayName: "Ad\"a é", avatarURL: nil, role: "owner"),
                Participant(userID: "u2", displayName: "B\\o", avatarURL: "x", role: "m"),
            ]))
        var accepted = 0
        for _ in 0..<3000 {
            let bytes = PropertyTesting.editBytes(original, using: &random)
            let viaDecoder = try? JSONDecoder().decode(ParticipantsEntry.self, from: Data(bytes))
            if let viaParser = try? EntryCodec.decodeFromRedis(bytes) {
                accepted += 1
                #expect(viaDecoder == viaParser, "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
        // Some mutations (inside strings, whitespace) stay valid, so both paths were exercised.
        #expect(accepted > 100)
    }
}
