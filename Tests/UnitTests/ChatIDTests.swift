import Foundation
import Testing

@testable import Actors

@Suite("ChatID")
struct ChatIDTests {
    @Test(arguments: [
        "a", "chat-1", "Chat_2.x:y", "0", "-", "a.b.c", "ns:chat:42", "UPPER_lower-09",
        String(repeating: "x", count: 128),
    ])
    func acceptsValidIdentifiers(_ text: String) throws {
        let id = try #require(ChatID(validating: text))
        #expect(id.rawValue == text)
        #expect(id.description == text)
        #expect(id.redisKey == "participants:v1:{\(text)}")
    }

    @Test(arguments: [
        "", String(repeating: "x", count: 129), "{x}", "a{b", "a}b", "../", "a/b", "a b", " a", "a ",
        "a\u{0}b", "\u{0}", "a\nb", "a\tb", "é", "chat-é", "😀", "a\u{7F}", "a\"b", "a\\b", "a*b", "a?b",
        "a#b", "a%20b", "ｆｕｌｌ",
    ])
    func rejectsInvalidIdentifiers(_ text: String) {
        #expect(ChatID(validating: text) == nil)
    }

    @Test func lengthLimitCountsCharactersOfTheAllowedAlphabet() {
        #expect(ChatID.maximumLength == 128)
        #expect(ChatID(validating: String(repeating: "a", count: 128)) != nil)
        #expect(ChatID(validating: String(repeating: "a", count: 129)) == nil)
    }

    @Test func redisKeyUsesTheChatAsHashTag() throws {
        let id = try #require(ChatID(validating: "abc"))
        #expect(id.redisKey == "participants:v1:{abc}")
    }

    @Test func codableRoundTripsAndRejectsInvalidStrings() throws {
        let id = try #require(ChatID(validating: "chat-7"))
        let encoded = try JSONEncoder().encode([id])
        #expect(String(decoding: encoded, as: UTF8.self) == #"["chat-7"]"#)
        #expect(try JSONDecoder().decode([ChatID].self, from: encoded) == [id])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([ChatID].self, from: Data(#"["a b"]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([ChatID].self, from: Data(#"[7]"#.utf8)) }
    }

    @Test func equalityAndHashingFollowTheRawValue() throws {
        let first = try #require(ChatID(validating: "same"))
        let second = try #require(ChatID(validating: "same"))
        let other = try #require(ChatID(validating: "Same"))
        #expect(first == second)
        #expect(first != other)
        #expect(Set([first, second, other]).count == 2)
    }
}
