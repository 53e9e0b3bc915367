import Actors
import Foundation
import Testing

@testable import StubUpstream

@Suite("StubDataset")
struct StubDatasetTests {
    @Test func participantsFollowTheDocumentedPattern() {
        let dataset = StubDataset(chatCount: 5, participantsPerChat: 15)
        let chat = dataset.chat(4)
        #expect(chat.chatID.rawValue == "chat-4")
        #expect(chat.version == 1)
        #expect(chat.participants.count == 15)
        #expect(chat.participants[0] == Participant(
            userID: "u-4-0", displayName: "User 0 of chat 4 (v1)", avatarURL: "https://avatars.invalid/u-4-0.png", role: "owner"))
        #expect(chat.participants.map(\.role) == ["owner", "admin", "member", "member", "member", "member", "member", "member",
            "member", "member", "member", "admin", "member", "member", "member"])
        #expect(chat.participants.indices.filter { chat.participants[$0].avatarURL == nil } == [6, 13])
        #expect(chat.participants[13].userID == "u-4-13")
        #expect(chat.participants[13].displayName == "User 13 of chat 4 (v1)")
    }

    @Test func isDeterministic() {
        let first = StubDataset(chatCount: 100, participantsPerChat: 20)
        let second = StubDataset(chatCount: 100, participantsPerChat: 20)
        for number in [1, 37, 100] {
            #expect(first.chat(number) == second.chat(number))
            var a = JSONWriter()
            var b = JSONWriter()
            first.writeChat(number, into: &a)
            second.writeChat(number, into: &b)
            #expect(a.bytes == b.bytes)
        }
    }

    @Test func writtenJSONDecodesToTheSameChat() throws {
        var dataset = StubDataset(chatCount: 9, participantsPerChat: 21)
        dataset.bump(9)
        for number in [1, 9] {
            var writer = JSONWriter()
            dataset.writeChat(number, into: &writer)
            #expect(try UpstreamDecoder.decodeChat(writer.bytes) == dataset.chat(number))
        }
        let empty = StubDataset(chatCount: 1, participantsPerChat: 0)
        var writer = JSONWriter()
        empty.writeChat(1, into: &writer)
        #expect(try UpstreamDecoder.decodeChat(writer.bytes).participants.isEmpty)
    }

    @Test(arguments: [(0, 10), (1, 10), (10, 10), (25, 10), (1000, 7), (1000, 1000), (1000, 5000)])
    func pagingCoversEveryChatExactlyOnce(chatCount: Int, pageSize: Int) throws {
        let dataset = StubDataset(chatCount: chatCount, participantsPerChat: 1)
        var seen: [String] = []
        var token: String?
        var pages = 0
        repeat {
            let page = try #require(dataset.page(size: pageSize, token: token))
            #expect(page.chatIDs.count <= pageSize)
            seen += page.chatIDs
            token = page.nextPageToken
            pages += 1
        } while token != nil && pages <= chatCount + 1
        #expect(seen == (0..<chatCount).map { StubDataset.chatID($0 + 1) })
        #expect(pages == max(1, (chatCount + pageSize - 1) / pageSize))
    }

    @Test func refusesTokensItNeverIssued() {
        let dataset = StubDataset(chatCount: 10, participantsPerChat: 1)
        for token in ["0", "-1", "12", "01", "abc", "", " 3"] {
            #expect(dataset.page(size: 5, token: token) == nil, "\(token)")
        }
        #expect(dataset.page(size: 5, token: "11")?.chatIDs == [])
        #expect(dataset.page(size: 5, token: "6")?.chatIDs == ["chat-6", "chat-7", "chat-8", "chat-9", "chat-10"])
        #expect(dataset.page(size: 5, token: "6")?.nextPageToken == nil)
    }

    @Test func bumpChangesVersionAndDisplayNamesOfThatChatOnly() {
        var dataset = StubDataset(chatCount: 3, participantsPerChat: 2)
        let before = (1...3).map(dataset.chat)
        #expect(dataset.bump(2) == 2)
        #expect(dataset.bump(2) == 3)
        #expect(dataset.chat(1) == before[0])
        #expect(dataset.chat(3) == before[2])
        let bumped = dataset.chat(2)
        #expect(bumped.version == 3)
        #expect(bumped.participants.map(\.displayName) == ["User 0 of chat 2 (v3)", "User 1 of chat 2 (v3)"])
        #expect(bumped.participants.map(\.userID) == before[1].participants.map(\.userID))
    }

    @Test func chatNumbersParseStrictly() {
        let dataset = StubDataset(chatCount: 1_000_000, participantsPerChat: 1)
        #expect(dataset.chatNumber(of: "chat-1") == 1)
        #expect(dataset.chatNumber(of: "chat-1000000") == 1_000_000)
        for id in ["chat-0", "chat-01", "chat-1000001", "chat-", "chat--1", "chat-1a", "Chat-1", "x", "", "chat-99999999999999999999999"] {
            #expect(dataset.chatNumber(of: id) == nil, "\(id)")
        }
    }
}
