import Foundation
import ChatRuntime
import StubUpstream
import Testing

@testable import Actors

/// The hand-written upstream parser is only a fast path: for any body, ``UpstreamDecoder``
/// must answer exactly what `JSONDecoder` answers.
@Suite("UpstreamParser")
struct UpstreamParserTests {
    typealias Outcome = Result<BatchGetResponse, UpstreamDecodingError>

    static func viaJSONDecoder(_ body: [UInt8]) -> Outcome {
        Result { () throws(UpstreamDecodingError) in try UpstreamDecoder.decode(BatchGetResponse.self, from: body) }
    }

    static func viaDecoder(_ body: [UInt8]) -> Outcome {
        Result { () throws(UpstreamDecodingError) in try UpstreamDecoder.decodeBatchGet(body) }
    }

    static func stubBody(chats: Int, notFound: [String] = ["chat-999999"]) -> [UInt8] {
        let dataset = StubDataset(chatCount: 1000, participantsPerChat: 20)
        var writer = JSONWriter()
        writer.appendRaw(#"{"chats":["#)
        for number in 1...chats {
            if number > 1 { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            dataset.writeChat(number, into: &writer)
        }
        writer.appendRaw(#"],"not_found":["#)
        for (index, id) in notFound.enumerated() {
            if index > 0 { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            writer.appendString(id)
        }
        writer.appendRaw("]}")
        return writer.bytes
    }

    @Test func stubAnswersTakeTheFastPathAndAgree() throws {
        for chats in [1, 7, 50] {
            let body = Self.stubBody(chats: chats)
            let fast = try #require(UpstreamParser.batchGet(body))
            #expect(fast.chats.count == chats)
            #expect(Outcome.success(fast) == Self.viaJSONDecoder(body))
        }
    }

    @Test(arguments: [
        #"{"chats":[],"not_found":null}"#,
        #"{"chats":[]}"#,
        #" { "x" : {"y":[1,{"z":null}]} , "chats" : [ {"chat_id":"c","participants":[{"user_id":"u","display_name":"d\u00e9 \"q\"","role":"r","more":1}],"version":-7} ] } "#,
        #"{"chats":[{"chat_id":"c","participants":[{"user_id":"u","display_name":"d","avatar_url":null,"role":"r"}],"version":9223372036854775807}]}"#,
    ])
    func unusualButValidBodiesAgree(_ text: String) {
        let body = Array(text.utf8)
        #expect(UpstreamParser.batchGet(body) != nil)
        #expect(Self.viaDecoder(body) == Self.viaJSONDecoder(body))
    }

    @Test(arguments: [
        // A chat to reject, numbers JSONDecoder reads as integers, duplicate keys, bad envelopes.
        #"{"chats":[{"chat_id":"bad id","participants":[],"version":1},{"chat_id":"c","participants":[],"version":1}]}"#,
        #"{"chats":[{"chat_id":"c","participants":[],"version":1.0}]}"#,
        #"{"chats":[{"chat_id":"c","participants":[],"version":1e3}]}"#,
        #"{"chats":[{"chat_id":"c","chat_id":"d","participants":[],"version":1}]}"#,
        #"{"chats":[{"chat_id":"c","participants":[{"user_id":"a","user_id":"b","display_name":"d","role":"r"}],"version":1}]}"#,
        #"{"chats":[],"chats":[{"chat_id":"c","participants":[],"version":1}]}"#,
        #"{"chats":[{"chat_id":"c","participants":[{"user_id":"u","display_name":"d"}],"version":1}]}"#,
        #"{"chats":[{"chat_id":"c","participants":[],"version":"1"}]}"#,
        #"{"chats":{}}"#,
        #"{"not_found":[]}"#,
        #"{"chats":[],"not_found":[1]}"#,
        #"[]"#,
        #"{"chats":[]} x"#,
    ])
    func everythingElseFallsBackToJSONDecoder(_ text: String) {
        let body = Array(text.utf8)
        #expect(UpstreamParser.batchGet(body) == nil)
        #expect(Self.viaDecoder(body) == Self.viaJSONDecoder(body))
    }

    @Test func singleChatsTakeTheFastPathAndAgree() throws {
        let dataset = StubDataset(chatCount: 10, participantsPerChat: 20)
        var writer = JSONWriter()
        dataset.writeChat(3, into: &writer)
        let fast = try #require(UpstreamParser.chat(writer.bytes))
        let reference = try UpstreamDecoder.decode(UpstreamChat.self, from: writer.bytes)
        #expect(fast == reference)
        let odd = Array(#"{"chat_id":"c","participants":[],"version":2.0}"#.utf8)
        #expect(UpstreamParser.chat(odd) == nil)
        #expect(try UpstreamDecoder.decodeChat(odd).version == 2)
    }

    /// Random corruption: whatever the fast path accepts, JSONDecoder reads the same way.
    @Test func agreesWithJSONDecoderOnRandomMutations() {
        var random = SeededRandom(seed: 42)
        let original = Array(#"{"chats":[{"chat_id":"c-1","participants":[{"user_id":"u1","display_name":"Ad\"a é","avatar_url":null,"role":"owner"},{"user_id":"u2","display_name":"B\\o","avatar_url":"x","role":"m"}],"version":3}],"not_found":["z"]}"#.utf8)
        var fast = 0
        for _ in 0..<3000 {
            let bytes = PropertyTesting.editBytes(original, using: &random)
            if let parsed = UpstreamParser.batchGet(bytes) {
                fast += 1
                #expect(Outcome.success(parsed) == Self.viaJSONDecoder(bytes), "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
        #expect(fast > 100)
    }
}
