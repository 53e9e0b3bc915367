import GRPCCore
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

    @Test(arguments: [
        ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER   abc  ", "abc"), ("  Bearer\tabc", "abc"),
        ("Basic abc", nil), ("Bearer", nil), ("Bearer   ", nil), ("abc", nil), ("", nil),
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

    @Test func adminTokenIsComparedExactly() {
        let authenticator = CallAuthenticator(jwtSecret: nil, adminToken: "s3cret")
        var right = Metadata()
        right.addString("Bearer s3cret", forKey: "authorization")
        var wrong = Metadata()
        wrong.addString("Bearer s3cret2", forKey: "authorization")
        #expect(throws: Never.self) { try authenticator.admin(right) }
        #expect(throws: RPCError.self) { try authenticator.admin(wrong) }
        #expect(throws: RPCError.self) { try authenticator.user(right) }
    }
}
