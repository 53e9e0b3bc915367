import Foundation
import Testing

@testable import Actors

@Suite("UpstreamDecoder")
struct UpstreamDecoderTests {
    static let validChat =
        #"{"chat_id":"c1","participants":[{"user_id":"u1","display_name":"Ada","avatar_url":"https://a/1","role":"owner"},{"user_id":"u2","display_name":"Bo","avatar_url":null,"role":"member"}],"version":3}"#

    static func chatFailure(_ text: String) -> UpstreamDecodingError? {
        chatFailure(Array(text.utf8))
    }

    static func chatFailure(_ bytes: [UInt8]) -> UpstreamDecodingError? {
        do {
            _ = try UpstreamDecoder.decodeChat(bytes)
            return nil
        } catch {
            return error
        }
    }

    static func batchFailure(_ text: String) -> UpstreamDecodingError? {
        do {
            _ = try UpstreamDecoder.decodeBatchGet(Array(text.utf8))
            return nil
        } catch {
            return error
        }
    }

    static func pageFailure(_ text: String) -> UpstreamDecodingError? {
        do {
            _ = try UpstreamDecoder.decodeChatListPage(Array(text.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func decodesAChat() throws {
        let chat = try UpstreamDecoder.decodeChat(Array(Self.validChat.utf8))
        #expect(chat.chatID.rawValue == "c1")
        #expect(chat.version == 3)
        #expect(
            chat.participants == [
                Participant(userID: "u1", displayName: "Ada", avatarURL: "https://a/1", role: "owner"),
                Participant(userID: "u2", displayName: "Bo", avatarURL: nil, role: "member"),
            ])
    }

    @Test func toleratesUnknownFieldsAndMissingAvatar() throws {
        let text =
            #"{"chat_id":"c1","extra":{"x":[1,2]},"participants":[{"user_id":"u","display_name":"d","role":"r","flags":7}],"version":0}"#
        let chat = try UpstreamDecoder.decodeChat(Array(text.utf8))
        #expect(chat.participants.first?.avatarURL == nil)
    }

    @Test(
        arguments: [
            ("", DecodingFailureReason.notJSON, "$"),
            ("<html>502 Bad Gateway</html>", .notJSON, "$"),
            (#"{"chat_id":"c1","participants":["#, .notJSON, "$"),
            (#"{"chat_id":"c1"} trailing"#, .notJSON, "$"),
            ("[]", .wrongType, "$"),
            ("42", .wrongType, "$"),
            ("null", .nullValue, "$"),
            (#"{"participants":[],"version":1}"#, .missingField, "$.chat_id"),
            (#"{"chat_id":"c1","version":1}"#, .missingField, "$.participants"),
            (#"{"chat_id":"c1","participants":[]}"#, .missingField, "$.version"),
            (#"{"chat_id":null,"participants":[],"version":1}"#, .nullValue, "$.chat_id"),
            (#"{"chat_id":7,"participants":[],"version":1}"#, .wrongType, "$.chat_id"),
            (#"{"chat_id":"c/1","participants":[],"version":1}"#, .invalidValue, "$.chat_id"),
            (#"{"chat_id":"c1","participants":{},"version":1}"#, .wrongType, "$.participants"),
            (#"{"chat_id":"c1","participants":[],"version":"1"}"#, .wrongType, "$.version"),
            (#"{"chat_id":"c1","participants":[],"version":null}"#, .nullValue, "$.version"),
            (#"{"chat_id":"c1","participants":[],"version":2.5}"#, .invalidValue, "$.version"),
            (#"{"chat_id":"c1","participants":[],"version":1e30}"#, .invalidValue, "$.version"),
            (#"{"chat_id":"c1","participants":[],"version":9223372036854775808}"#, .invalidValue, "$.version"),
            (#"{"chat_id":"c1","participants":[],"version":-9223372036854775809}"#, .invalidValue, "$.version"),
            (#"{"chat_id":"c1","participants":[null],"version":1}"#, .nullValue, "$.participants[0]"),
            (#"{"chat_id":"c1","participants":["u1"],"version":1}"#, .wrongType, "$.participants[0]"),
            (
                #"{"chat_id":"c1","participants":[{"user_id":1,"display_name":"d","role":"r"}],"version":1}"#,
                .wrongType, "$.participants[0].user_id"
            ),
            (
                #"{"chat_id":"c1","participants":[{"user_id":"u","display_name":null,"role":"r"}],"version":1}"#,
                .nullValue, "$.participants[0].display_name"
            ),
            (
                #"{"chat_id":"c1","participants":[{"user_id":"u","display_name":"d","avatar_url":5,"role":"r"}],"version":1}"#,
                .wrongType, "$.participants[0].avatar_url"
            ),
            (
                #"{"chat_id":"c1","participants":[{"user_id":"u","display_name":"d","role":"r"},{"user_id":"u2","display_name":"d"}],"version":1}"#,
                .missingField, "$.participants[1].role"
            ),
        ] as [(String, DecodingFailureReason, String)])
    func malformedChatsAreRefusedWithWhatWasWrong(_ text: String, _ reason: DecodingFailureReason, _ path: String)
        throws
    {
        let failure = try #require(Self.chatFailure(text))
        #expect(failure.reason == reason, "\(failure)")
        #expect(failure.path == path, "\(failure)")
        #expect(failure.description.contains(path))
    }

    @Test func extremeButValidVersionsAreAccepted() throws {
        for version in [Int64.max, Int64.min, 0] {
            let text = #"{"chat_id":"c1","participants":[],"version":\#(version)}"#
            #expect(try UpstreamDecoder.decodeChat(Array(text.utf8)).version == version)
        }
    }

    @Test(arguments: [[0xFF], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80]] as [[UInt8]])
    func invalidUTF8IsNotJSON(_ badBytes: [UInt8]) throws {
        var bytes = Array(Self.validChat.utf8)
        let index = try #require(bytes.firstIndex(of: UInt8(ascii: "A")))
        bytes.replaceSubrange(index...index, with: badBytes)
        let failure = try #require(Self.chatFailure(bytes))
        #expect(failure.reason == .notJSON, "\(failure)")
    }

    @Test func randomCorruptionNeverCrashesNorHalfAccepts() {
        var random = SeededRandom(seed: 7)
        let original = Array(Self.validChat.utf8)
        var refused = 0
        for _ in 0..<3000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let index = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes.remove(at: index)
                default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: index)
                }
                if bytes.isEmpty { break }
            }
            do {
                let chat = try UpstreamDecoder.decodeChat(bytes)
                // Whatever was accepted is complete and well-typed.
                #expect(ChatID(validating: chat.chatID.rawValue) != nil)
                #expect(chat.participants.count <= 2)
            } catch {
                refused += 1
                #expect(!error.path.isEmpty)
            }
        }
        #expect(refused > 1000)
    }

    @Test func batchKeepsGoodChatsAndReportsBadOnes() throws {
        let text = """
            {"chats":[
              {"chat_id":"good-1","participants":[],"version":1},
              {"chat_id":"bad-role","participants":[{"user_id":"u","display_name":"d","role":false}],"version":1},
              42,
              null,
              {"chat_id":"bad id","participants":[],"version":1},
              {"chat_id":"bad-version","participants":[],"version":"7"},
              {"participants":[],"version":1},
              {"chat_id":"good-2","participants":[{"user_id":"u","display_name":"d","avatar_url":null,"role":"r"}],"version":2}
            ],"not_found":["gone-1","gone 2"]}
            """
        let response = try UpstreamDecoder.decodeBatchGet(Array(text.utf8))
        #expect(response.chats.map(\.chatID.rawValue) == ["good-1", "good-2"])
        #expect(response.notFound == ["gone-1", "gone 2"])
        #expect(
            response.rejected.map(\.path) == [
                "$.chats[1].participants[0].role", "$.chats[2]", "$.chats[3]", "$.chats[4].chat_id",
                "$.chats[5].version", "$.chats[6].chat_id",
            ])
        #expect(response.rejected.map(\.chatID) == ["bad-role", nil, nil, "bad id", "bad-version", nil])
        #expect(
            response.rejected.map(\.reason) == [
                .wrongType, .wrongType, .nullValue, .invalidValue, .wrongType, .missingField,
            ])
    }

    @Test func batchWithoutNotFoundMeansNoneMissing() throws {
        let response = try UpstreamDecoder.decodeBatchGet(Array(#"{"chats":[]}"#.utf8))
        #expect(response == BatchGetResponse(chats: [], notFound: []))
        let withNull = try UpstreamDecoder.decodeBatchGet(Array(#"{"chats":[],"not_found":null}"#.utf8))
        #expect(withNull.notFound.isEmpty)
    }

    @Test(
        arguments: [
            ("", DecodingFailureReason.notJSON, "$"),
            ("[]", .wrongType, "$"),
            (#"{"not_found":[]}"#, .missingField, "$.chats"),
            (#"{"chats":null}"#, .nullValue, "$.chats"),
            (#"{"chats":{"chat_id":"c"}}"#, .wrongType, "$.chats"),
            (#"{"chats":[],"not_found":"c1"}"#, .wrongType, "$.not_found"),
            (#"{"chats":[],"not_found":[1]}"#, .wrongType, "$.not_found[0]"),
        ] as [(String, DecodingFailureReason, String)])
    func malformedBatchEnvelopesAreRefused(_ text: String, _ reason: DecodingFailureReason, _ path: String) throws {
        let failure = try #require(Self.batchFailure(text))
        #expect(failure.reason == reason, "\(failure)")
        #expect(failure.path == path, "\(failure)")
    }

    @Test func decodesChatListPages() throws {
        let page = try UpstreamDecoder.decodeChatListPage(
            Array(#"{"chat_ids":["a","b{1}","c"],"next_page_token":"t2"}"#.utf8))
        #expect(page.chatIDs.map(\.rawValue) == ["a", "c"])
        #expect(page.rejectedIDs == ["b{1}"])
        #expect(page.nextPageToken == "t2")
        for last in [
            #"{"chat_ids":[],"next_page_token":null}"#, #"{"chat_ids":[]}"#, #"{"chat_ids":[],"next_page_token":""}"#,
        ] {
            #expect(try UpstreamDecoder.decodeChatListPage(Array(last.utf8)).nextPageToken == nil, "\(last)")
        }
    }

    @Test(
        arguments: [
            ("nope", DecodingFailureReason.notJSON, "$"),
            (#"{"next_page_token":"t"}"#, .missingField, "$.chat_ids"),
            (#"{"chat_ids":null}"#, .nullValue, "$.chat_ids"),
            (#"{"chat_ids":["a",2]}"#, .wrongType, "$.chat_ids[1]"),
            (#"{"chat_ids":["a",null]}"#, .nullValue, "$.chat_ids[1]"),
            (#"{"chat_ids":[],"next_page_token":5}"#, .wrongType, "$.next_page_token"),
        ] as [(String, DecodingFailureReason, String)])
    func malformedChatListPagesAreRefused(_ text: String, _ reason: DecodingFailureReason, _ path: String) throws {
        let failure = try #require(Self.pageFailure(text))
        #expect(failure.reason == reason, "\(failure)")
        #expect(failure.path == path, "\(failure)")
    }

    @Test func wireTypesEncodeTheContractForTheStub() throws {
        let id = try #require(ChatID(validating: "c1"))
        let chat = UpstreamChat(
            chatID: id,
            participants: [Participant(userID: "u", displayName: "d", avatarURL: nil, role: "r")],
            version: 4
        )
        let response = BatchGetResponse(chats: [chat], notFound: ["x"])
        let encoded = try JSONEncoder().encode(response)
        #expect(try UpstreamDecoder.decodeBatchGet(Array(encoded)) == response)
        let object = try #require(try JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        #expect(Set(object.keys) == ["chats", "not_found"])

        let page = ChatListPage(chatIDs: [id], nextPageToken: nil)
        let pageJSON = try JSONEncoder().encode(page)
        let pageObject = try #require(try JSONSerialization.jsonObject(with: pageJSON) as? [String: Any])
        #expect(pageObject["next_page_token"] is NSNull)
        #expect(try UpstreamDecoder.decodeChatListPage(Array(pageJSON)) == page)

        let request = BatchGetRequest(chatIDs: [id])
        let requestJSON = try JSONEncoder().encode(request)
        #expect(String(decoding: requestJSON, as: UTF8.self) == #"{"chat_ids":["c1"]}"#)
        #expect(try UpstreamDecoder.decodeBatchGetRequest(Array(requestJSON)) == request)
        #expect(throws: UpstreamDecodingError.self) {
            try UpstreamDecoder.decodeBatchGetRequest(Array(#"{"chat_ids":["../etc"]}"#.utf8))
        }
    }
}
