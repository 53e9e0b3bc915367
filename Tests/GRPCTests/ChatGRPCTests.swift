import Actors
import ChatService
import Foundation
import GRPCCore
import GRPCFrontend
import Testing
import TestSupport
import SwiftProtobuf

/// `chat.v1.ChatService` through grpc-swift's client over loopback, on the embedded SQLite store:
/// every RPC, membership, idempotency, pagination, validation, auth, and Redis killed.
@Suite("gRPC chat", .serialized, .timeLimit(.minutes(2)))
struct ChatGRPCTests {
    typealias Client = Chat_V1_ChatService.Client

    @Test func createPostAndListAsMembersOnly() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let chats = Client(wrapping: client)
            let created = try await chats.createChat(
                .with { $0.title = "Lunch"; $0.members = ["bob", "alice"] }, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded)
            #expect(created.hosted)
            #expect(created.title == "Lunch")
            #expect(created.createdBy == "alice")
            #expect(created.hasCreatedAt)
            #expect(created.members.map(\.userID) == ["alice", "bob"])
            #expect(created.members.allSatisfy { $0.source == .store && !$0.hasDisplayName })
            #expect(ChatID(validating: created.chatID) != nil)
            let chat = created.chatID

            let first = try await chats.postMessage(
                .with { $0.chatID = chat; $0.text = "hi alice" }, metadata: GRPCApp.user("bob"), options: GRPCApp.bounded)
            #expect(!first.replayed)
            #expect(first.message.chatID == chat)
            #expect(first.message.authorID == "bob")
            #expect(first.message.text == "hi alice")
            #expect(MessageID(text: first.message.id) != nil)
            #expect(first.message.hasCreatedAt)
            // A hosted chat's members are not in upstream's lists: ids only, flagged.
            #expect(!first.message.authorResolved)
            #expect(!first.message.hasAuthor)
            _ = try await chats.postMessage(.with { $0.chatID = chat; $0.text = "hi bob" }, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded)

            let page = try await chats.listMessages(.with { $0.chatID = chat }, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded)
            #expect(page.chatID == chat)
            #expect(page.messages.map(\.text) == ["hi bob", "hi alice"])
            #expect(page.messages.map(\.authorID) == ["alice", "bob"])
            #expect(page.nextBefore.isEmpty)
            #expect(!page.authorsResolved)

            // The same chat over HTTP: one core, one store.
            let http = await httpGet(
                app.httpBase + "/v1/chats/\(chat)/messages",
                headers: ["Authorization": "Bearer \(mintUserToken(subject: "bob", secret: GRPCApp.jwtSecret, validFor: .seconds(60)))"],
                timeout: .seconds(10))
            #expect(http?.status == 200)
            #expect(http?.body.contains("\"id\":\"\(first.message.id)\"") == true)

            // Not a member: PERMISSION_DENIED (HTTP 403) on posting and reading.
            #expect(await GRPCApp.failure {
                _ = try await chats.postMessage(.with { $0.chatID = chat; $0.text = "let me in" }, metadata: GRPCApp.user("carol"), options: GRPCApp.bounded)
            } == .permissionDenied)
            #expect(await GRPCApp.failure {
                _ = try await chats.listMessages(.with { $0.chatID = chat }, metadata: GRPCApp.user("carol"), options: GRPCApp.bounded)
            } == .permissionDenied)
            // Unknown (neither the store nor upstream knows it) and malformed chat ids.
            #expect(await GRPCApp.failure {
                _ = try await chats.listMessages(.with { $0.chatID = "c-nobody-knows" }, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded)
            } == .notFound)
            #expect(await GRPCApp.failure {
                _ = try await chats.postMessage(.with { $0.chatID = "bad id"; $0.text = "x" }, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded)
            } == .invalidArgument)
        }
        await app.close()
    }

    @Test func upstreamParticipantsAreMembersAndAuthorsResolve() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let chats = Client(wrapping: client)
            // The stub's chat-1 lists u-1-0 ... u-1-3.
            let posted = try await chats.postMessage(
                .with { $0.chatID = "chat-1"; $0.text = "from upstream's list" }, metadata: GRPCApp.user("u-1-0"), options: GRPCApp.bounded)
            #expect(posted.message.authorResolved)
            #expect(posted.message.author.userID == "u-1-0")
            #expect(posted.message.author.displayName == "User 0 of chat 1 (v1)")
            #expect(!posted.message.author.role.isEmpty)
            let page = try await chats.listMessages(.with { $0.chatID = "chat-1" }, metadata: GRPCApp.user("u-1-2"), options: GRPCApp.bounded)
            #expect(page.authorsResolved)
            #expect(page.participantsAvailable)
            #expect(page.messages.map(\.author.displayName) == ["User 0 of chat 1 (v1)"])
            #expect(await GRPCApp.failure {
                _ = try await chats.listMessages(.with { $0.chatID = "chat-1" }, metadata: GRPCApp.user("u-2-0"), options: GRPCApp.bounded)
            } == .permissionDenied)
        }
        await app.close()
    }

    @Test func idempotencyKeysReplayAndRefuseAnotherText() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let chats = Client(wrapping: client)
            let chat = try await chats.createChat(Chat_V1_CreateChatRequest(), metadata: GRPCApp.user("alice"), options: GRPCApp.bounded).chatID
            let request = Chat_V1_PostMessageRequest.with { $0.chatID = chat; $0.text = "once"; $0.idempotencyKey = "key-1" }
            let first = try await chats.postMessage(request, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded)
            let again = try await chats.postMessage(request, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded)
            #expect(!first.replayed)
            #expect(again.replayed)
            #expect(again.message.id == first.message.id)
            #expect(again.message.createdAt == first.message.createdAt)
            #expect(await GRPCApp.failure {
                var other = request
                other.text = "twice"
                _ = try await chats.postMessage(other, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded)
            } == .alreadyExists)
            #expect(await GRPCApp.failure {
                var spaced = request
                spaced.idempotencyKey = "has space"
                _ = try await chats.postMessage(spaced, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded)
            } == .invalidArgument)
            let page = try await chats.listMessages(.with { $0.chatID = chat }, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded)
            #expect(page.messages.map(\.text) == ["once"])
        }
        await app.close()
    }

    @Test func pagesGoNewestFirstWithACursorAndLimitsAreChecked() async throws {
        let app = try await GRPCApp.start(environment: ["CHAT_MESSAGE_MAX_BYTES": "16"])
        try await app.withClient { client in
            let chats = Client(wrapping: client)
            let alice = GRPCApp.user("alice")
            let chat = try await chats.createChat(.with { $0.title = "pages" }, metadata: alice, options: GRPCApp.bounded).chatID
            for index in 1...5 {
                _ = try await chats.postMessage(.with { $0.chatID = chat; $0.text = "m\(index)" }, metadata: alice, options: GRPCApp.bounded)
            }
            var texts: [String] = []
            var before = ""
            for _ in 0..<5 {
                let page = try await chats.listMessages(
                    .with { $0.chatID = chat; $0.limit = 2; $0.before = before }, metadata: alice, options: GRPCApp.bounded)
                #expect(page.messages.count <= 2)
                texts += page.messages.map(\.text)
                before = page.nextBefore
                if before.isEmpty { break }
            }
            #expect(texts == ["m5", "m4", "m3", "m2", "m1"])
            #expect(before.isEmpty)

            let invalid: [Chat_V1_ListMessagesRequest] = [
                .with { $0.chatID = chat; $0.limit = 201 }, .with { $0.chatID = chat; $0.limit = -1 },
                .with { $0.chatID = chat; $0.before = "abc" }, .with { $0.chatID = chat; $0.before = "-5" },
            ]
            for request in invalid {
                #expect(await GRPCApp.failure {
                    _ = try await chats.listMessages(request, metadata: alice, options: GRPCApp.bounded)
                } == .invalidArgument, "\(request)")
            }
            for text in ["", String(repeating: "x", count: 17)] {
                #expect(await GRPCApp.failure {
                    _ = try await chats.postMessage(.with { $0.chatID = chat; $0.text = text }, metadata: alice, options: GRPCApp.bounded)
                } == .invalidArgument, "text of \(text.utf8.count) bytes")
            }
            #expect(await GRPCApp.failure {
                _ = try await chats.createChat(.with { $0.title = String(repeating: "t", count: 257) }, metadata: alice, options: GRPCApp.bounded)
            } == .invalidArgument)
        }
        await app.close()
    }

    @Test func everyCallNeedsATokenWithASubject() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let chats = Client(wrapping: client)
            let noSubject = JWTSigner.sign(
                JWTClaims(subject: nil, expiresAt: Date().addingTimeInterval(600)), secret: Array(GRPCApp.jwtSecret.utf8))
            let forged = mintUserToken(subject: "alice", secret: "other-secret", validFor: .seconds(60))
            for metadata in [GRPCApp.bearer(nil), GRPCApp.bearer(noSubject), GRPCApp.bearer(forged), GRPCApp.admin] {
                #expect(await GRPCApp.failure {
                    _ = try await chats.createChat(Chat_V1_CreateChatRequest(), metadata: metadata, options: GRPCApp.bounded)
                } == .unauthenticated)
                #expect(await GRPCApp.failure {
                    _ = try await chats.postMessage(.with { $0.chatID = "chat-1"; $0.text = "x" }, metadata: metadata, options: GRPCApp.bounded)
                } == .unauthenticated)
                #expect(await GRPCApp.failure {
                    _ = try await chats.listMessages(.with { $0.chatID = "chat-1" }, metadata: metadata, options: GRPCApp.bounded)
                } == .unauthenticated)
            }
        }
        await app.close()
    }

    @Test func withRedisKilledChatsAreCreatedPostedAndRead() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let chats = Client(wrapping: client)
            // chat-2's participants reach memory before Redis goes.
            _ = try await chats.postMessage(
                .with { $0.chatID = "chat-2"; $0.text = "before" }, metadata: GRPCApp.user("u-2-1"), options: GRPCApp.bounded)
            await app.redis.kill()
            let supervisor = app.application.supervisor
            #expect(await eventually(timeout: .seconds(10)) { await supervisor.state != .ready })

            let chat = try await chats.createChat(.with { $0.members = ["bob"] }, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded).chatID
            _ = try await chats.postMessage(.with { $0.chatID = chat; $0.text = "no redis" }, metadata: GRPCApp.user("bob"), options: GRPCApp.bounded)
            let hosted = try await chats.listMessages(.with { $0.chatID = chat }, metadata: GRPCApp.user("alice"), options: GRPCApp.bounded)
            #expect(hosted.messages.map(\.text) == ["no redis"])

            let posted = try await chats.postMessage(
                .with { $0.chatID = "chat-2"; $0.text = "during" }, metadata: GRPCApp.user("u-2-1"), options: GRPCApp.bounded)
            #expect(posted.message.authorResolved)
            let page = try await chats.listMessages(.with { $0.chatID = "chat-2" }, metadata: GRPCApp.user("u-2-0"), options: GRPCApp.bounded)
            #expect(page.messages.map(\.text) == ["during", "before"])
            #expect(page.authorsResolved)
        }
        await app.close()
    }
}
