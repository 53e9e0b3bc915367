import Foundation
import Testing

@testable import Actors

/// Properties of the upstream decoder over mutated bodies: it never traps, accepts only JSON,
/// refuses every proper prefix, and what it returns holds only valid chat ids.
@Suite("UpstreamDecoder properties")
struct UpstreamDecoderPropertyTests {
    /// The Redis form is the upstream form plus `fetched_at`, a key upstream decoding ignores.
    static func chatBody(_ entry: ParticipantsEntry) -> [UInt8] {
        EntryCodec.encodeForRedis(entry)
    }

    static func batchBody(using random: inout SeededRandom) -> [UInt8] {
        let chats = (0..<Int.random(in: 0...3, using: &random)).map { _ in
            String(decoding: chatBody(EntryCodecPropertyTests.randomEntry(using: &random)), as: UTF8.self)
        }
        let notFound = (0..<Int.random(in: 0...2, using: &random)).map { "\"chat-\($0)\"" }
        return Array(
            #"{"chats":[\#(chats.joined(separator: ","))],"not_found":[\#(notFound.joined(separator: ","))]}"#.utf8)
    }

    static func pageBody(using random: inout SeededRandom) -> [UInt8] {
        let ids = (0..<Int.random(in: 0...5, using: &random)).map { "\"chat-\($0)\"" }
        let token = Bool.random(using: &random) ? #""next""# : "null"
        return Array(#"{"chat_ids":[\#(ids.joined(separator: ","))],"next_page_token":\#(token)}"#.utf8)
    }

    /// Decodes with all three entry points; nil when every one refused.
    static func decodeAny(_ bytes: [UInt8]) -> (chats: [UpstreamChat], ids: [ChatID])? {
        if let chat = try? UpstreamDecoder.decodeChat(bytes) { return ([chat], [chat.chatID]) }
        if let batch = try? UpstreamDecoder.decodeBatchGet(bytes) { return (batch.chats, batch.chats.map(\.chatID)) }
        if let page = try? UpstreamDecoder.decodeChatListPage(bytes) { return ([], page.chatIDs) }
        return nil
    }

    /// JSONDecoder accepts these; the decoder must not (found by the mutation property).
    @Test func invalidJSONThatJSONDecoderLetsThroughIsRefused() {
        let shortEscape =
            Array(#"{"chat_id":"c1","participants":[{"user_id":"u","display_name":"\u009"#.utf8)
            + [0xEF, 0xBB, 0xBF] + Array(#"","avatar_url":null,"role":"r"}],"version":1}"#.utf8)
        let invalidUTF8InKey =
            Array(#"{"chat_id":"c1","participants":[],"version":1,"ex"#.utf8) + [0xF5] + Array(#"tra":1}"#.utf8)
        for body in [shortEscape, invalidUTF8InKey] {
            #expect(throws: UpstreamDecodingError.self) { try UpstreamDecoder.decodeChat(body) }
            #expect(!PropertyTesting.isJSON(body))
        }
    }

    @Test func validBodiesDecode() throws {
        var random = SeededRandom(seed: 0x5EED)
        for _ in 0..<max(1, PropertyTesting.iterations / 10) {
            let entry = EntryCodecPropertyTests.randomEntry(using: &random)
            let chat = try UpstreamDecoder.decodeChat(Self.chatBody(entry))
            #expect(
                chat.chatID == entry.chatID && chat.participants == entry.participants && chat.version == entry.version)
            _ = try UpstreamDecoder.decodeBatchGet(Self.batchBody(using: &random))
            _ = try UpstreamDecoder.decodeChatListPage(Self.pageBody(using: &random))
        }
    }

    @Test func mutatedBodiesAreRefusedOrValidJSON() {
        var random = SeededRandom(seed: 0xD0C)
        var accepted = 0
        for iteration in 0..<PropertyTesting.iterations * 2 {
            let original: [UInt8]
            switch iteration % 3 {
            case 0: original = Self.chatBody(EntryCodecPropertyTests.randomEntry(using: &random))
            case 1: original = Self.batchBody(using: &random)
            default: original = Self.pageBody(using: &random)
            }
            let mutated = PropertyTesting.mutate(original, using: &random)
            guard let decoded = Self.decodeAny(mutated) else { continue }
            accepted += 1
            if !PropertyTesting.isJSON(mutated) {
                Issue.record(
                    "iteration \(iteration): accepted bytes that are not JSON: \(String(decoding: mutated, as: UTF8.self).debugDescription)"
                )
                return
            }
            #expect(decoded.ids.allSatisfy { ChatID(validating: $0.rawValue) != nil })
        }
        #expect(accepted > 0)
        PropertyTesting.report(
            "upstream decoder: mutated bodies refused or valid JSON", cases: PropertyTesting.iterations * 2)
    }

    @Test func noProperPrefixIsAccepted() {
        var random = SeededRandom(seed: 0xF1C)
        for iteration in 0..<max(1, PropertyTesting.iterations / 5) {
            let body =
                iteration % 2 == 0
                ? Self.chatBody(EntryCodecPropertyTests.randomEntry(using: &random)) : Self.batchBody(using: &random)
            let lengths = (0..<20).map { _ in Int.random(in: 0..<body.count, using: &random) } + [0, body.count - 1]
            for length in lengths where Self.decodeAny(Array(body.prefix(length))) != nil {
                Issue.record(
                    "accepted a prefix of \(length)/\(body.count) bytes: \(String(decoding: body.prefix(length), as: UTF8.self))"
                )
                return
            }
        }
    }
}
