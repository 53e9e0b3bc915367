import Actors
import ChatRuntime
import Foundation
import GRPCCore
import Logging
import SwiftProtobuf
import Testing

@testable import GRPCFrontend

/// The health service's state and the metadata parsing, without a network.
@Suite("gRPC health service and auth (in-process)")
struct UnitHealthServiceTests {
    @Test func statusesStartNotServingAndShutdownIsFinal() {
        let health = HealthService(services: ["a.Service": .serving])
        #expect(health.status(of: "") == .notServing)
        #expect(health.status(of: "a.Service") == .serving)
        #expect(health.status(of: "b.Service") == nil)
        health.markServing()
        #expect(health.status(of: "") == .serving)
        health.setStatus(.notServing, for: "a.Service")
        #expect(health.status(of: "a.Service") == .notServing)
        health.shutDown()
        #expect(health.status(of: "") == .notServing)
        health.setStatus(.serving, for: "a.Service")
        health.markServing()
        #expect(health.status(of: "a.Service") == .notServing)
        #expect(health.status(of: "") == .notServing)
    }

    @Test(
        arguments: [
            ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER   abc  ", "abc"), ("  Bearer abc", "abc"),
            ("Bearer\tabc", nil), ("Basic abc", nil), ("Bearer", nil), ("Bearer   ", nil), ("abc", nil), ("", nil),
        ] as [(String, String?)])
    func bearerTokens(header: String, token: String?) {
        var metadata = Metadata()
        metadata.addString(header, forKey: "authorization")
        #expect(CallAuthenticator.bearerToken(metadata).map(String.init) == token)
    }

    @Test func noAuthorizationMetadataHasNoToken() {
        #expect(CallAuthenticator.bearerToken(Metadata()) == nil)
        var other = Metadata()
        other.addString("Bearer abc", forKey: "x-authorization")
        #expect(CallAuthenticator.bearerToken(other) == nil)
    }

    @Test func adminTokenIsComparedExactly() async {
        let authenticator = CallAuthenticator(verifier: await TokenVerifier(secret: nil), adminToken: "s3cret")
        var right = Metadata()
        right.addString("Bearer s3cret", forKey: "authorization")
        var wrong = Metadata()
        wrong.addString("Bearer s3cret2", forKey: "authorization")
        #expect(throws: Never.self) { try authenticator.admin(right) }
        #expect(throws: RPCError.self) { try authenticator.admin(wrong) }
        await #expect(throws: RPCError.self) { try await authenticator.user(right) }
    }

    /// A token that needs the identity provider's keys before any fetch succeeded: UNAVAILABLE
    /// (HTTP's 503 auth_unavailable), never accepted; `alg: none` stays UNAUTHENTICATED.
    @Test func providerTokensBeforeTheKeysArriveAreUnavailable() async throws {
        let loop = EventLoop(name: "grpc-auth-jwks")
        defer { loop.stop() }
        // Nothing listens there, and no fetch is made: the provider has no keys.
        let provider = try JWKSProvider(
            url: "http://127.0.0.1:9/certs", loop: loop, logger: Logger(label: "test.grpc-auth"))
        let authenticator = CallAuthenticator(
            verifier: await TokenVerifier(secret: nil, provider: provider), adminToken: nil)
        func metadata(header: String) -> Metadata {
            let encode = { (text: String) in
                Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                    .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            }
            var metadata = Metadata()
            metadata.addString("Bearer \(encode(header)).\(encode(#"{"sub":"u"}"#)).c2ln", forKey: "authorization")
            return metadata
        }
        do {
            _ = try await authenticator.user(metadata(header: #"{"alg":"RS256","kid":"k1"}"#))
            Issue.record("a token was accepted without the provider's keys")
        } catch {
            #expect(error.code == .unavailable, "\(error)")
        }
        do {
            _ = try await authenticator.user(metadata(header: #"{"alg":"none"}"#))
            Issue.record("alg none was accepted")
        } catch {
            #expect(error.code == .unauthenticated, "\(error)")
        }
    }
}

/// The wire form of entries, without a network.
@Suite("gRPC participants messages (in-process)")
struct UnitParticipantsMessageTests {
    @Test(
        arguments: [
            (1_764_000_000.1234, 1_764_000_000, 123_000_000), (1_764_000_000.9996, 1_764_000_001, 0),
            (0.0, 0, 0), (-0.25, -1, 750_000_000),
        ] as [(Double, Int64, Int32)])
    func fetchedAtCarriesWholeMilliseconds(seconds: Double, wholeSeconds: Int64, nanos: Int32) {
        let timestamp = Chat_V1_ChatParticipants.milliseconds(Date(timeIntervalSince1970: seconds))
        #expect(timestamp.seconds == wholeSeconds)
        #expect(timestamp.nanos == nanos)
    }

    @Test func entriesMapFieldForField() throws {
        let chat = try #require(ChatID(validating: "chat-1"))
        let entry = ParticipantsEntry(
            chatID: chat,
            participants: [
                Participant(userID: "u1", displayName: "One", avatarURL: "https://a/1.png", role: "owner"),
                Participant(userID: "u2", displayName: "Two", avatarURL: nil, role: "member"),
            ],
            version: 7, fetchedAt: Date(timeIntervalSince1970: 1_764_000_000.5))
        let message = Chat_V1_ChatParticipants(entry, stale: true, source: .memory)
        #expect(message.chatID == "chat-1")
        #expect(message.version == 7)
        #expect(message.stale)
        #expect(message.source == .memory)
        #expect(message.fetchedAt.seconds == 1_764_000_000 && message.fetchedAt.nanos == 500_000_000)
        #expect(message.participants.map(\.userID) == ["u1", "u2"])
        #expect(message.participants[0].hasAvatarURL && message.participants[0].avatarURL == "https://a/1.png")
        #expect(!message.participants[1].hasAvatarURL)
        #expect(message.participants.map(\.role) == ["owner", "member"])
        #expect(ReadSource.allCases.map { Chat_V1_ParticipantsSource($0) } == [.cache, .upstream, .memory])
    }
}
