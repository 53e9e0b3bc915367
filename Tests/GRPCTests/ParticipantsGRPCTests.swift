import Actors
import ChatService
import Foundation
import GRPCCore
import GRPCFrontend
import StubUpstream
import Testing
import TestSupport
import SwiftProtobuf

/// `chat.v1.ParticipantsService` through grpc-swift's client over loopback: every RPC, the
/// status codes of the HTTP API's errors, authentication, and reads with Redis killed.
@Suite("gRPC participants", .serialized, .timeLimit(.minutes(2)))
struct ParticipantsGRPCTests {
    typealias Client = Chat_V1_ParticipantsService.Client

    @Test func getParticipantsServesUpstreamThenMemoryAndMapsErrors() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let participants = Client(wrapping: client)
            let first = try await participants.getParticipants(
                .with { $0.chatID = "chat-3" }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            #expect(first.chatID == "chat-3")
            #expect(first.source == .upstream)
            #expect(!first.stale)
            #expect(first.participants.count == 4)
            #expect(first.participants.allSatisfy { !$0.userID.isEmpty && !$0.displayName.isEmpty && !$0.role.isEmpty })
            #expect(first.version >= 1)
            #expect(first.hasFetchedAt)
            #expect(abs(first.fetchedAt.date.timeIntervalSinceNow) < 300)

            let second = try await participants.getParticipants(
                .with { $0.chatID = "chat-3" }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            #expect(second.source == .memory)
            #expect(second.participants == first.participants)
            #expect(second.version == first.version)

            // The same entry the HTTP route serves.
            let http = await httpGet(app.httpBase + "/v1/chats/chat-3/participants", headers: ["Authorization": "Bearer \(GRPCApp.userToken)"], timeout: .seconds(10))
            #expect(http?.status == 200)
            let json = try #require(try JSONSerialization.jsonObject(with: Data((http?.body ?? "").utf8)) as? [String: Any])
            #expect(json["version"] as? Int == Int(first.version))
            let httpFetchedAt = try #require((json["fetched_at"] as? String).flatMap(ISO8601Timestamp.date(from:)))
            #expect(httpFetchedAt.storedMillisecondsForTest == Int64(first.fetchedAt.seconds) * 1000 + Int64(first.fetchedAt.nanos / 1_000_000))
            let users = (json["participants"] as? [[String: Any]])?.compactMap { $0["user_id"] as? String }
            #expect(users == first.participants.map(\.userID))

            #expect(await GRPCApp.failure {
                _ = try await participants.getParticipants(.with { $0.chatID = "chat-999" }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            } == .notFound)
            for bad in ["", "has space", "{braces}", String(repeating: "x", count: 129)] {
                #expect(await GRPCApp.failure {
                    _ = try await participants.getParticipants(.with { $0.chatID = bad }, metadata: GRPCApp.user, options: GRPCApp.bounded)
                } == .invalidArgument, "chat id \(bad)")
            }
        }
        await app.close()
    }

    @Test func userCallsNeedAValidTokenAndOperatorCallsTheAdminToken() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let participants = Client(wrapping: client)
            let request = Chat_V1_GetParticipantsRequest.with { $0.chatID = "chat-1" }
            let forged = mintUserToken(subject: "mallory", secret: "other-secret", validFor: .seconds(60))
            let expired = mintUserToken(subject: "bob", secret: GRPCApp.jwtSecret, validFor: .seconds(60), now: Date().addingTimeInterval(-3600))
            var basic = Metadata()
            basic.addString("Basic \(GRPCApp.userToken)", forKey: "authorization")
            for metadata in [GRPCApp.bearer(nil), GRPCApp.bearer(forged), GRPCApp.bearer(expired), GRPCApp.bearer("not-a-jwt"), basic] {
                #expect(await GRPCApp.failure {
                    _ = try await participants.getParticipants(request, metadata: metadata, options: GRPCApp.bounded)
                } == .unauthenticated)
                #expect(await GRPCApp.failure {
                    _ = try await participants.batchGetParticipants(.with { $0.chatIds = ["chat-1"] }, metadata: metadata, options: GRPCApp.bounded)
                } == .unauthenticated)
            }
            // Authentication comes before validation, as over HTTP.
            #expect(await GRPCApp.failure {
                _ = try await participants.getParticipants(.with { $0.chatID = "bad id" }, options: GRPCApp.bounded)
            } == .unauthenticated)

            let refresh = Chat_V1_RefreshParticipantsRequest.with { $0.chatID = "chat-1" }
            for metadata in [GRPCApp.bearer(nil), GRPCApp.user, GRPCApp.bearer("wrong-admin-token")] {
                #expect(await GRPCApp.failure {
                    _ = try await participants.refreshParticipants(refresh, metadata: metadata, options: GRPCApp.bounded)
                } == .permissionDenied)
            }
            // A lower-case scheme and blanks around the token are accepted, as over HTTP.
            var loose = Metadata()
            loose.addString("bearer   \(GRPCApp.userToken) ", forKey: "authorization")
            let read = try await participants.getParticipants(request, metadata: loose, options: GRPCApp.bounded)
            #expect(read.chatID == "chat-1")
        }
        #expect(await app.stub.statistics.totalRequests == 1, "refused calls reached upstream")
        await app.close()
    }

    @Test func withoutSecretsEveryCallIsRefused() async throws {
        let app = try await GRPCApp.start(environment: ["JWT_SECRET": "", "ADMIN_TOKEN": ""])
        try await app.withClient { client in
            let participants = Client(wrapping: client)
            #expect(await GRPCApp.failure {
                _ = try await participants.getParticipants(.with { $0.chatID = "chat-1" }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            } == .unauthenticated)
            #expect(await GRPCApp.failure {
                _ = try await participants.refreshParticipants(.with { $0.allChats = true }, metadata: GRPCApp.admin, options: GRPCApp.bounded)
            } == .permissionDenied)
        }
        await app.close()
    }

    @Test func batchGetListsFoundMissingInOrderAndBoundsTheCount() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let participants = Client(wrapping: client)
            let response = try await participants.batchGetParticipants(
                .with { $0.chatIds = ["chat-5", "chat-404", "chat-2", "chat-5", "chat-9"] },
                metadata: GRPCApp.user, options: GRPCApp.bounded)
            #expect(response.chats.map(\.chatID) == ["chat-5", "chat-2", "chat-9"])
            #expect(response.chats.allSatisfy { $0.participants.count == 4 && $0.source == .upstream && !$0.stale })
            #expect(response.notFound == ["chat-404"])
            #expect(response.unavailable.isEmpty)

            // Repeats count once: 7 distinct ids (PARTICIPANTS_BATCH_SIZE) pass, 8 do not.
            let seven = (1...7).map { "chat-\($0)" }
            let again = try await participants.batchGetParticipants(
                .with { $0.chatIds = seven + seven }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            #expect(again.chats.count == 7)
            #expect(again.chats.first { $0.chatID == "chat-5" }?.source == .memory)
            for ids in [seven + ["chat-8"], [], ["chat-1", "not valid"]] {
                #expect(await GRPCApp.failure {
                    _ = try await participants.batchGetParticipants(.with { $0.chatIds = ids }, metadata: GRPCApp.user, options: GRPCApp.bounded)
                } == .invalidArgument, "\(ids)")
            }
        }
        await app.close()
    }

    @Test func requestMessagesAreBoundedLikeHTTPBodies() async throws {
        let app = try await GRPCApp.start(environment: ["HTTP_MAX_BODY_SIZE": "512"])
        try await app.withClient { client in
            let participants = Client(wrapping: client)
            // Five valid ids (within PARTICIPANTS_BATCH_SIZE) of 120 characters: over 512 bytes
            // only as a whole. The transport refuses the message before any handler runs.
            let long = (1...5).map { "chat-\($0)-" + String(repeating: "x", count: 113) }
            let refused = await GRPCApp.failure {
                _ = try await participants.batchGetParticipants(.with { $0.chatIds = long }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            }
            #expect(refused != nil && refused != .invalidArgument, "\(String(describing: refused))")
            let small = try await participants.batchGetParticipants(.with { $0.chatIds = ["chat-1"] }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            #expect(small.chats.count == 1)
        }
        #expect(await app.stub.statistics.totalRequests == 1, "the oversized call reached upstream")
        await app.close()
    }

    @Test func refreshParticipantsRefreshesOneChatOrStartsAFullRun() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let participants = Client(wrapping: client)
            _ = try await participants.getParticipants(.with { $0.chatID = "chat-4" }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            let callsBefore = await app.stub.statistics.totalRequests
            let refreshed = try await participants.refreshParticipants(
                .with { $0.chatID = "chat-4" }, metadata: GRPCApp.admin, options: GRPCApp.bounded)
            #expect(refreshed.chat.chatID == "chat-4")
            #expect(refreshed.chat.source == .upstream)
            #expect(refreshed.chat.participants.count == 4)
            #expect(await app.stub.statistics.totalRequests == callsBefore + 1)

            #expect(await GRPCApp.failure {
                _ = try await participants.refreshParticipants(.with { $0.chatID = "chat-404" }, metadata: GRPCApp.admin, options: GRPCApp.bounded)
            } == .notFound)
            for request in [Chat_V1_RefreshParticipantsRequest(), .with { $0.allChats = false }, .with { $0.chatID = "no/slash" }] {
                #expect(await GRPCApp.failure {
                    _ = try await participants.refreshParticipants(request, metadata: GRPCApp.admin, options: GRPCApp.bounded)
                } == .invalidArgument)
            }

            let full = try await participants.refreshParticipants(
                .with { $0.allChats = true }, metadata: GRPCApp.admin, options: GRPCApp.bounded)
            let jobID = full.jobID
            #expect(!jobID.isEmpty)
            // The job is the HTTP API's: its status route knows it, and it completes.
            let completed = await eventually(timeout: .seconds(30)) {
                let reply = await httpGet(
                    app.httpBase + "/internal/participants/refresh/\(jobID)",
                    headers: ["Authorization": "Bearer \(GRPCApp.adminToken)"], timeout: .seconds(5))
                return reply?.status == 200 && reply?.body.contains("\"completed\"") == true
            }
            #expect(completed)
        }
        await app.close()
    }

    @Test func upstreamFailuresMapToUnavailableAndDeadlineExceeded() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let participants = Client(wrapping: client)
            // Malformed answers fail at once, without retries (and do not open the breaker).
            await app.stub.updateFaults { $0.malformedRate = 1.0 }
            #expect(await GRPCApp.failure {
                _ = try await participants.getParticipants(.with { $0.chatID = "chat-6" }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            } == .unavailable)
            #expect(await GRPCApp.failure {
                _ = try await participants.refreshParticipants(.with { $0.chatID = "chat-6" }, metadata: GRPCApp.admin, options: GRPCApp.bounded)
            } == .unavailable)
            let batch = try await participants.batchGetParticipants(
                .with { $0.chatIds = ["chat-6", "chat-7"] }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            #expect(batch.chats.isEmpty)
            #expect(batch.unavailable == ["chat-6", "chat-7"])

            // An upstream that never answers: PARTICIPANTS_MAX_API_TIMEOUT (3 s) → HTTP 504.
            await app.stub.updateFaults { $0.malformedRate = 0; $0.hang = true }
            #expect(await GRPCApp.failure {
                _ = try await participants.refreshParticipants(.with { $0.chatID = "chat-6" }, metadata: GRPCApp.admin, options: GRPCApp.bounded)
            } == .deadlineExceeded)
        }
        await app.close()
    }

    @Test func redisKilledReadsAreServedFromMemoryAndUpstreamAndHealthSaysDegraded() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let participants = Client(wrapping: client)
            let health = Grpc_Health_V1_Health.Client(wrapping: client)
            let (watch, watchTask) = WatchLog.watch(GRPCApp.participantsHealth, on: client)
            #expect(await eventually(timeout: .seconds(10)) { watch.received == [.serving] })

            let warm = try await participants.getParticipants(.with { $0.chatID = "chat-8" }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            #expect(warm.source == .upstream)
            await app.redis.kill()

            #expect(await eventually(timeout: .seconds(10)) { watch.received.last == .notServing })
            let participantsStatus = try await health.check(.with { $0.service = GRPCApp.participantsHealth }, options: GRPCApp.bounded)
            #expect(participantsStatus.status == .notServing)
            // The server as a whole still serves.
            #expect(try await health.check(.with { $0.service = "" }, options: GRPCApp.bounded).status == .serving)

            let fromMemory = try await participants.getParticipants(.with { $0.chatID = "chat-8" }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            #expect(fromMemory.source == .memory)
            #expect(fromMemory.participants == warm.participants)
            let cold = try await participants.getParticipants(.with { $0.chatID = "chat-11" }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            #expect(cold.source == .upstream)
            #expect(cold.participants.count == 4)
            let batch = try await participants.batchGetParticipants(
                .with { $0.chatIds = ["chat-8", "chat-12"] }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            #expect(batch.chats.map(\.source) == [.memory, .upstream])
            let refreshed = try await participants.refreshParticipants(.with { $0.chatID = "chat-8" }, metadata: GRPCApp.admin, options: GRPCApp.bounded)
            #expect(refreshed.chat.source == .upstream)

            try await app.redis.restart()
            #expect(await eventually(timeout: .seconds(15)) { watch.received.last == .serving })
            #expect(watch.received == [.serving, .notServing, .serving])
            watchTask.cancel()
            await watchTask.value
        }
        await app.close()
    }

    @Test func integrationDisabledAnswersUnavailableAndHealthNotServing() async throws {
        let app = try await GRPCApp.start(environment: ["PARTICIPANTS_INTEGRATION_DISABLED": "true"])
        try await app.withClient { client in
            let participants = Client(wrapping: client)
            #expect(await GRPCApp.failure {
                _ = try await participants.getParticipants(.with { $0.chatID = "chat-1" }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            } == .unavailable)
            #expect(await GRPCApp.failure {
                _ = try await participants.refreshParticipants(.with { $0.allChats = true }, metadata: GRPCApp.admin, options: GRPCApp.bounded)
            } == .unavailable)
            let health = Grpc_Health_V1_Health.Client(wrapping: client)
            let participantsStatus = try await health.check(.with { $0.service = GRPCApp.participantsHealth }, options: GRPCApp.bounded)
            #expect(participantsStatus.status == .notServing)
            let serverStatus = try await health.check(.with { $0.service = "" }, options: GRPCApp.bounded)
            #expect(serverStatus.status == .serving)
        }
        #expect(await app.stub.statistics.totalRequests == 0)
        await app.close()
    }
}

extension Date {
    /// Whole milliseconds since 1970, rounded as the service stores them.
    var storedMillisecondsForTest: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
}
