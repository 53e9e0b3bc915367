import ChatRuntime
import Foundation
import Synchronization
import Testing

@testable import Actors

/// The chat domain's decisions, without servers: an in-memory store (the real stores pass the
/// same contract in the integration tests) and a scripted participants layer.
@Suite("Chat core")
struct ChatCoreTests {
    /// A store in a dictionary, for the domain's decisions only.
    actor MemoryStore: ChatStore {
        var chats: [ChatID: Chat] = [:]
        var members: [ChatID: [ChatMember]] = [:]
        var messages: [ChatMessage] = []

        func createChat(_ chat: Chat, members recorded: [ChatMember]) -> Bool {
            guard chats[chat.id] == nil else { return false }
            chats[chat.id] = chat
            members[chat.id] = recorded
            return true
        }

        func chat(_ id: ChatID) -> Chat? { chats[id] }

        func membership(of userID: String, in chat: ChatID) -> StoreMembership {
            StoreMembership(chat: chats[chat], isMember: members[chat, default: []].contains { $0.userID == userID })
        }

        func members(of chat: ChatID) -> [ChatMember] { members[chat, default: []] }

        func addMember(_ member: ChatMember) -> Bool {
            guard !members[member.chatID, default: []].contains(where: { $0.userID == member.userID }) else { return false }
            members[member.chatID, default: []].append(member)
            return true
        }

        func appendMessage(_ draft: MessageDraft) -> MessageAppend {
            if let key = draft.idempotencyKey,
                let existing = messages.first(where: { $0.chatID == draft.chatID && $0.authorID == draft.authorID && $0.idempotencyKey == key })
            {
                return existing.text == draft.text ? .replayed(existing) : .keyReused(existing)
            }
            let message = ChatMessage(
                id: MessageID(rawValue: Int64(messages.count + 1)), chatID: draft.chatID, authorID: draft.authorID,
                text: draft.text, createdAt: draft.createdAt, idempotencyKey: draft.idempotencyKey)
            messages.append(message)
            return .created(message)
        }

        func messages(in chat: ChatID, before: MessageID?, limit: Int) -> [ChatMessage] {
            Array(messages.filter { $0.chatID == chat && $0.id < (before ?? MessageID(rawValue: .max)) }.reversed().prefix(limit))
        }
    }

    /// Answers per chat as scripted; counts the questions and the tracked chats.
    final class ScriptedParticipants: ChatParticipantsSource {
        let answers: [String: ChatParticipants]
        let asked = Atomic<Int>(0)
        let tracked = AnnotatedMutex<[ChatID]>([])

        init(_ answers: [String: ChatParticipants] = [:]) { self.answers = answers }

        func participants(of chat: ChatID) async -> ChatParticipants {
            asked.add(1, ordering: .relaxed)
            return answers[chat.rawValue] ?? .unknownChat
        }

        func track(_ chat: ChatID) async { tracked.withLock { $0.append(chat) } }
    }

    static let upstreamChat = ChatID(validating: "chat-1")!
    static let ann = Participant(userID: "ann", displayName: "Ann", avatarURL: nil, role: "owner")
    static let ben = Participant(userID: "ben", displayName: "Ben", avatarURL: "https://a.invalid/ben.png", role: "member")

    static func core(_ participants: ScriptedParticipants = ScriptedParticipants(), settings: ChatCore.Settings = .init()) -> (ChatCore, MemoryStore) {
        let store = MemoryStore()
        return (ChatCore(store: store, participants: participants, settings: settings), store)
    }

    @Test func creatorAndNamedMembersAreRecordedOnceAndTheChatIsTracked() async throws {
        let participants = ScriptedParticipants()
        let (core, store) = Self.core(participants)
        let view = try await core.createChat(by: "alice", title: "t", members: ["bob", "alice", "bob"])
        #expect(view.members.map(\.userID) == ["alice", "bob"])
        #expect(view.hosted?.createdBy == "alice")
        #expect(await store.members(of: view.id).map(\.userID) == ["alice", "bob"])
        #expect(participants.tracked.withLock { $0 } == [view.id])
    }

    @Test func recordedMembersPostWithoutAskingTheParticipantsLayer() async throws {
        let participants = ScriptedParticipants()
        let (core, _) = Self.core(participants)
        let chat = try await core.createChat(by: "alice", title: nil).id
        _ = try await core.postMessage("hi", to: chat, by: "alice")
        #expect(participants.asked.load(ordering: .relaxed) == 0)
        await #expect(throws: ChatError.notAMember(chat)) { try await core.postMessage("hi", to: chat, by: "eve") }
    }

    @Test func upstreamParticipantsAreMembersAndOthersAreNot() async throws {
        let (core, _) = Self.core(ScriptedParticipants(["chat-1": .known([Self.ann, Self.ben], stale: false)]))
        let posted = try await core.postMessage("hello", to: Self.upstreamChat, by: "ben")
        #expect(posted.view.author == Self.ben)
        await #expect(throws: ChatError.notAMember(Self.upstreamChat)) {
            try await core.postMessage("hello", to: Self.upstreamChat, by: "eve")
        }
        let page = try await core.messages(in: Self.upstreamChat, for: "ann")
        #expect(page.authorsResolved && page.participantsAvailable)
        #expect(page.messages.first?.author?.displayName == "Ben")
    }

    @Test func unknownAndUnavailableChatsAreTold() async throws {
        let hostedParticipants = ScriptedParticipants(["chat-down": .unavailable])
        let (core, store) = Self.core(hostedParticipants)
        let unknown = ChatID(validating: "chat-unknown")!
        await #expect(throws: ChatError.chatNotFound(unknown)) { try await core.messages(in: unknown, for: "ann") }
        let down = ChatID(validating: "chat-down")!
        await #expect(throws: ChatError.membershipUnknown(down)) { try await core.messages(in: down, for: "ann") }
        // A recorded member of a chat only upstream knows passes while upstream is away.
        _ = await store.addMember(ChatMember(chatID: down, userID: "ann", addedBy: "ann", addedAt: Date()))
        let page = try await core.messages(in: down, for: "ann")
        #expect(!page.participantsAvailable && page.authorsResolved)
    }

    @Test func idempotentPostsReplayAndAReusedKeyIsRefused() async throws {
        let (core, _) = Self.core()
        let chat = try await core.createChat(by: "alice", title: nil).id
        let first = try await core.postMessage("a", to: chat, by: "alice", idempotencyKey: "k")
        let again = try await core.postMessage("a", to: chat, by: "alice", idempotencyKey: "k")
        #expect(!first.replayed && again.replayed && again.view.message.id == first.view.message.id)
        await #expect(throws: ChatError.idempotencyKeyReused(original: first.view.message.id)) {
            try await core.postMessage("b", to: chat, by: "alice", idempotencyKey: "k")
        }
        for bad in ["", "with space", String(repeating: "k", count: 256), "é"] {
            await #expect(throws: ChatError.self) { try await core.postMessage("a", to: chat, by: "alice", idempotencyKey: bad) }
        }
    }

    @Test func limitsAreChecked() async throws {
        var settings = ChatCore.Settings()
        settings.messageMaxBytes = 4
        let (core, _) = Self.core(settings: settings)
        let chat = try await core.createChat(by: "alice", title: nil).id
        _ = try await core.postMessage("éé", to: chat, by: "alice")
        await #expect(throws: ChatError.messageTooLarge(limit: 4)) { try await core.postMessage("ééé", to: chat, by: "alice") }
        await #expect(throws: ChatError.self) { try await core.postMessage("", to: chat, by: "alice") }
        for limit in [0, 201] {
            await #expect(throws: ChatError.self) { try await core.messages(in: chat, for: "alice", limit: limit) }
        }
        await #expect(throws: ChatError.self) { try await core.createChat(by: "", title: nil) }
        await #expect(throws: ChatError.self) { try await core.createChat(by: "a\u{7}b", title: nil) }
        await #expect(throws: ChatError.self) { try await core.createChat(by: "alice", title: String(repeating: "t", count: 257)) }
    }

    @Test func pagesCarryTheCursorUntilTheLastOne() async throws {
        let (core, _) = Self.core()
        let chat = try await core.createChat(by: "alice", title: nil).id
        for index in 0..<5 { _ = try await core.postMessage("m\(index)", to: chat, by: "alice") }
        let first = try await core.messages(in: chat, for: "alice", limit: 2)
        #expect(first.messages.map(\.message.text) == ["m4", "m3"])
        let second = try await core.messages(in: chat, for: "alice", before: first.nextBefore, limit: 2)
        #expect(second.messages.map(\.message.text) == ["m2", "m1"])
        let last = try await core.messages(in: chat, for: "alice", before: second.nextBefore, limit: 2)
        #expect(last.messages.map(\.message.text) == ["m0"])
        #expect(last.nextBefore == nil)
        let exact = try await core.messages(in: chat, for: "alice", limit: 5)
        #expect(exact.nextBefore == nil, "no cursor when nothing older exists")
    }

    @Test func membersMergeUpstreamAndRecordedOnes() {
        let recorded = [
            ChatMember(chatID: Self.upstreamChat, userID: "ben", addedBy: "ann", addedAt: Date()),
            ChatMember(chatID: Self.upstreamChat, userID: "cid", addedBy: "ann", addedAt: Date()),
        ]
        let merged = ChatCore.mergeMembers(participants: [Self.ann, Self.ben], recorded: recorded)
        #expect(merged.map(\.userID) == ["ann", "ben", "cid"])
        #expect(merged.map(\.source) == [.participants, .both, .store])
        #expect(merged[2].displayName == nil)
    }

    @Test func generatedChatIDsAreValidAndDistinct() {
        let ids = (0..<200).map { _ in ChatCore.newChatID() }
        #expect(Set(ids).count == 200)
        #expect(ids.allSatisfy { $0.rawValue.hasPrefix("c-") && $0.rawValue.utf8.count == 30 })
    }

    @Test func theParticipantsBoundReturnsWithoutTheSlowAnswer() async {
        let slow = await firstOf(.milliseconds(50)) { () async -> Int in
            // The slow answer the bound must not wait for.
            try? await Task.sleep(for: .seconds(30))
            return 1
        }
        #expect(slow == nil)
        let fast = await firstOf(.seconds(30)) { 2 }
        #expect(fast == 2)
    }
}
