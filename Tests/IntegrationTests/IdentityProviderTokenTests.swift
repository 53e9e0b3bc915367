import Foundation
import JWTKit
import Logging
import TestSupport
import Testing

@testable import Actors
@testable import ChatRuntime

/// User tokens from an identity provider: RS256, ES256 and EdDSA tokens minted here, their keys
/// served as a JWKS over HTTP and fetched by ``JWKSProvider`` with the service's HTTP client.
/// Accepted when genuine; forged, expired, `none`, algorithm-confused and wrong issuer or
/// audience refused; a rotated key picked up; known keys kept while the provider is down; and
/// nothing accepted before the first fetch.
@Suite("Identity provider tokens", .serialized, .timeLimit(.minutes(2)))
struct IdentityProviderTokenTests {
    static let logger = Logger(label: "test.identity-provider-tokens")
    static let issuer = "https://idp.test/realms/chat"
    static let audience = "chat-service"

    static func provider(
        for idp: IdentityProvider, unknownKeyRefetchInterval: Duration = .seconds(30)
    ) throws -> JWKSProvider {
        var settings = JWKSProvider.Settings()
        settings.unknownKeyRefetchInterval = unknownKeyRefetchInterval
        settings.fetchTimeout = .seconds(2)
        return try JWKSProvider(url: idp.jwksURL, loop: idp.loop, settings: settings, logger: logger)
    }

    static func verifier(_ provider: JWKSProvider, secret: String? = nil) async -> TokenVerifier {
        await TokenVerifier(secret: secret, provider: provider, issuer: issuer, audience: audience)
    }

    static func outcome(_ verifier: TokenVerifier, _ token: String) async -> Result<JWTClaims, TokenError> {
        await verifier.verify(token, now: Date())
    }

    @Test func tokensSignedWithTheProvidersRSAECAndEdDSAKeysAreAccepted() async throws {
        let idp = try await IdentityProvider()
        try await idp.start()
        let provider = try Self.provider(for: idp)
        #expect(await provider.refresh())
        #expect(await provider.keyIDs == ["rsa-1", "ec-1", "ed-1"])
        let verifier = await Self.verifier(provider)
        for key in [IdentityProvider.Key.rsa, .ec, .ed] {
            let token = try await idp.token(
                key, subject: "user-\(key.rawValue)", issuer: Self.issuer, audience: [Self.audience])
            let claims = try await Self.outcome(verifier, token).get()
            #expect(claims.subject == "user-\(key.rawValue)")
        }
        await idp.shutdown()
    }

    @Test func forgedExpiredNoneConfusedAndWrongIssuerOrAudienceAreRefused() async throws {
        let idp = try await IdentityProvider()
        try await idp.start()
        let provider = try Self.provider(for: idp)
        #expect(await provider.refresh())
        let verifier = await Self.verifier(provider, secret: "the-shared-secret-of-this-deployment")

        // Forged: the genuine header and payload of one key, the signature of another.
        let genuine = try await idp.token(.rsa, issuer: Self.issuer, audience: [Self.audience])
        let other = try await idp.token(.rotated, subject: "mallory", issuer: Self.issuer, audience: [Self.audience])
        let parts = genuine.split(separator: ".")
        let otherParts = other.split(separator: ".")
        let forgedPayload = "\(parts[0]).\(otherParts[1]).\(parts[2])"
        #expect(await Self.outcome(verifier, forgedPayload) == .failure(.invalidSignature))

        let expired = try await idp.token(.ec, expiresIn: -3600, issuer: Self.issuer, audience: [Self.audience])
        #expect(await Self.outcome(verifier, expired) == .failure(.expired))

        let none =
            IdentityProvider.base64URL(Data(#"{"alg":"none","kid":"rsa-1"}"#.utf8)) + "."
            + IdentityProvider.base64URL(
                Data(#"{"sub":"admin","iss":"\#(Self.issuer)","aud":"\#(Self.audience)"}"#.utf8)) + "."
        #expect(await Self.outcome(verifier, none) == .failure(.unsupportedAlgorithm("none")))

        // Algorithm confusion: HS256 "signed" with the provider's public key (a value anyone has).
        let confused = IdentityProvider.hs256Token(
            header: #"{"alg":"HS256","typ":"JWT","kid":"rsa-1"}"#,
            payload:
                #"{"sub":"admin","iss":"\#(Self.issuer)","aud":"\#(Self.audience)","exp":\#(Int(Date().timeIntervalSince1970) + 600)}"#,
            key: Array(idp.rsaPEM.utf8))
        #expect(await Self.outcome(verifier, confused) == .failure(.invalidSignature))
        let withoutSecret = await Self.verifier(provider)
        #expect(await Self.outcome(withoutSecret, confused) == .failure(.unsupportedAlgorithm("HS256")))
        // An RS256 header on an ES256 signature: the RSA key checks it, as RSA, and refuses.
        let ecToken = try await idp.token(.ec, issuer: Self.issuer, audience: [Self.audience])
        let ecParts = ecToken.split(separator: ".")
        let relabelled =
            IdentityProvider.base64URL(Data(#"{"alg":"RS256","kid":"rsa-1"}"#.utf8)) + ".\(ecParts[1]).\(ecParts[2])"
        #expect(await Self.outcome(verifier, relabelled) == .failure(.invalidSignature))

        let wrongIssuer = try await idp.token(.rsa, issuer: "https://evil.test", audience: [Self.audience])
        #expect(await Self.outcome(verifier, wrongIssuer) == .failure(.wrongIssuer))
        let wrongAudience = try await idp.token(.rsa, issuer: Self.issuer, audience: ["billing"])
        #expect(await Self.outcome(verifier, wrongAudience) == .failure(.wrongAudience))

        // The genuine one still passes.
        #expect(try await Self.outcome(verifier, genuine).get().subject == "alice")
        await idp.shutdown()
    }

    @Test func aRotatedKeyIsPickedUpAndUnknownKeyIDsFetchAtMostOncePerInterval() async throws {
        #expect(JWKSProvider.Settings().unknownKeyRefetchInterval == .seconds(30))
        let idp = try await IdentityProvider(serving: [.rsa])
        try await idp.start()
        // 3 s: the flood below must fit in one interval, also under AddressSanitizer on a busy machine.
        let provider = try Self.provider(for: idp, unknownKeyRefetchInterval: .seconds(3))
        #expect(await provider.refresh())
        let verifier = await Self.verifier(provider)
        let rotatedToken = try await idp.token(.rotated, issuer: Self.issuer, audience: [Self.audience])

        // Within the interval of the last fetch a flood of unknown kids costs no fetch.
        let before = idp.requests
        for _ in 0..<20 {
            #expect(await Self.outcome(verifier, rotatedToken) == .failure(.unknownKey("rsa-2")))
        }
        #expect(idp.requests == before)

        // The provider rotates; once the interval passed, the unknown kid fetches the set again.
        idp.serve([.rsa, .rotated])
        let accepted = await eventually(timeout: .seconds(10)) {
            (try? await Self.outcome(verifier, rotatedToken).get()) != nil
        }
        try #require(accepted, "the rotated key was never picked up")
        #expect(idp.requests == before + 1, "fetched \(idp.requests - before) times for one rotation")
        #expect(await provider.keyIDs == ["rsa-1", "rsa-2"])
        await idp.shutdown()
    }

    @Test func knownKeysKeepWorkingWhileTheProviderIsDown() async throws {
        let idp = try await IdentityProvider()
        try await idp.start()
        let provider = try Self.provider(for: idp, unknownKeyRefetchInterval: .milliseconds(10))
        #expect(await provider.refresh())
        let verifier = await Self.verifier(provider)
        let token = try await idp.token(.ed, issuer: Self.issuer, audience: [Self.audience])

        await idp.stop()
        #expect(await provider.refresh() == false)
        #expect(await provider.keyIDs == ["rsa-1", "ec-1", "ed-1"])
        #expect(try await Self.outcome(verifier, token).get().subject == "alice")
        // An unknown kid fails the fetch and is refused, nothing else.
        try await Task.sleep(for: .milliseconds(20)) // past the (test) refetch interval
        let rotated = try await idp.token(.rotated, issuer: Self.issuer, audience: [Self.audience])
        #expect(await Self.outcome(verifier, rotated) == .failure(.unknownKey("rsa-2")))
        idp.fail(true)
        try await idp.start()
        #expect(await provider.refresh() == false)
        #expect(try await Self.outcome(verifier, token).get().subject == "alice")
        await idp.shutdown()
    }

    @Test func beforeTheFirstFetchProviderTokensAreUnavailableNeverAccepted() async throws {
        let idp = try await IdentityProvider()
        idp.fail(true)
        try await idp.start()
        let provider = try Self.provider(for: idp)
        #expect(await provider.refresh() == false)
        let secret = "the-shared-secret-of-this-deployment"
        let verifier = await Self.verifier(provider, secret: secret)
        let token = try await idp.token(.rsa, issuer: Self.issuer, audience: [Self.audience])
        #expect(await Self.outcome(verifier, token) == .failure(.keysUnavailable))
        // HS256 tokens do not need the provider.
        let shared = JWTSigner.sign(
            payloadJSON: Array(#"{"sub":"bob","iss":"\#(Self.issuer)","aud":"\#(Self.audience)"}"#.utf8),
            secret: Array(secret.utf8))
        #expect(try await Self.outcome(verifier, shared).get().subject == "bob")

        idp.fail(false)
        #expect(await provider.refresh())
        #expect(try await Self.outcome(verifier, token).get().subject == "alice")
        await idp.shutdown()
    }
}
