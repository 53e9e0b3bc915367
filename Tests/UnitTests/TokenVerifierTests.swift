import Crypto
import Foundation
import Testing

@testable import Actors

/// HS256 tokens through the jwt-kit verifier (JWT_SECRET), the header routing and the claim
/// checks. Provider keys (RS256, ES256, EdDSA from a JWKS) are covered by the integration suite
/// `IdentityProviderTokens`, against a JWKS served over HTTP.
@Suite("TokenVerifier")
struct TokenVerifierTests {
    static let secret = Array("test-secret-0123456789".utf8)
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func verifier(leeway: Duration = .seconds(30), issuer: String? = nil, audience: String? = nil) async
        -> TokenVerifier
    {
        await TokenVerifier(
            secret: String(decoding: secret, as: UTF8.self), issuer: issuer, audience: audience, leeway: leeway)
    }

    static func token(header: String, payload: String, secret: [UInt8] = secret) -> String {
        token(
            encodedHeader: Base64URL.encode(Array(header.utf8)), encodedPayload: Base64URL.encode(Array(payload.utf8)),
            secret: secret)
    }

    /// Signs whatever segment text it is given, valid base64url or not.
    static func token(encodedHeader: String, encodedPayload: String, secret: [UInt8] = secret) -> String {
        let signingInput = encodedHeader + "." + encodedPayload
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: secret))
        return signingInput + "." + Base64URL.encode(Array(mac))
    }

    static func failure(_ token: String, at now: Date = now, verifier: TokenVerifier? = nil) async -> TokenError? {
        let verifier = if let verifier { verifier } else { await Self.verifier() }
        guard case .failure(let error) = await verifier.verify(token, now: now) else { return nil }
        return error
    }

    @Test func acceptsAValidToken() async throws {
        let claims = JWTClaims(
            subject: "user-1", expiresAt: Self.now.addingTimeInterval(600),
            notBefore: Self.now.addingTimeInterval(-60), issuedAt: Self.now.addingTimeInterval(-60))
        let token = JWTSigner.sign(claims, secret: Self.secret)
        let verified = try await Self.verifier().verify(token, now: Self.now).get()
        #expect(verified == claims)
    }

    @Test func acceptsTokensWithoutTimeClaims() async throws {
        let token = JWTSigner.sign(JWTClaims(subject: "u"), secret: Self.secret)
        #expect(try await Self.verifier().verify(token, now: Self.now).get().subject == "u")
        let empty = JWTSigner.sign(JWTClaims(), secret: Self.secret)
        #expect(try await Self.verifier().verify(empty, now: Self.now).get() == JWTClaims())
    }

    @Test func acceptsOtherWellFormedHS256HeadersAndFractionalDates() async throws {
        let token = Self.token(
            header: #"{"typ":"JWT", "alg":"HS256","kid":"k1"}"#,
            payload: #"{"sub":"s","exp":1800000000.5,"custom":[1]}"#)
        let claims = try await Self.verifier().verify(token, now: Self.now).get()
        #expect(claims.subject == "s")
        #expect(claims.expiresAt == Date(timeIntervalSince1970: 1_800_000_000.5))
    }

    @Test func signerWritesTheStandardHeader() {
        let token = JWTSigner.sign(
            JWTClaims(subject: "u", expiresAt: Date(timeIntervalSince1970: 1_800_000_000.9)), secret: Self.secret)
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        #expect(parts.count == 3)
        #expect(
            Base64URL.decode(Array(parts[0].utf8)).map { String(decoding: $0, as: UTF8.self) }
                == #"{"alg":"HS256","typ":"JWT"}"#)
        #expect(
            Base64URL.decode(Array(parts[1].utf8)).map { String(decoding: $0, as: UTF8.self) }
                == #"{"sub":"u","exp":1800000000}"#)
        #expect(token == Self.token(header: #"{"alg":"HS256","typ":"JWT"}"#, payload: #"{"sub":"u","exp":1800000000}"#))
    }

    @Test func expiryHonoursTheLeeway() async {
        let token = JWTSigner.sign(JWTClaims(expiresAt: Self.now), secret: Self.secret)
        #expect(await Self.failure(token, at: Self.now.addingTimeInterval(29)) == nil)
        #expect(await Self.failure(token, at: Self.now.addingTimeInterval(30)) == .expired)
        #expect(await Self.failure(token, at: Self.now.addingTimeInterval(3600)) == .expired)
        let strict = await Self.verifier(leeway: .zero)
        #expect(await Self.failure(token, at: Self.now.addingTimeInterval(-1), verifier: strict) == nil)
        #expect(await Self.failure(token, at: Self.now, verifier: strict) == .expired)
    }

    @Test func notBeforeHonoursTheLeeway() async {
        let token = JWTSigner.sign(JWTClaims(notBefore: Self.now), secret: Self.secret)
        #expect(await Self.failure(token, at: Self.now.addingTimeInterval(-30)) == nil)
        #expect(await Self.failure(token, at: Self.now.addingTimeInterval(-31)) == .notYetValid)
        #expect(await Self.failure(token, at: Self.now) == nil)
    }

    @Test func rejectsATokenSignedWithAnotherSecret() async {
        let token = JWTSigner.sign(JWTClaims(subject: "u"), secret: Array("other-secret".utf8))
        #expect(await Self.failure(token) == .invalidSignature)
    }

    @Test func rejectsATamperedPayload() async {
        let token = JWTSigner.sign(JWTClaims(subject: "user-1"), secret: Self.secret)
        let parts = token.split(separator: ".").map(String.init)
        let forged = Base64URL.encode(Array(#"{"sub":"admin"}"#.utf8))
        #expect(await Self.failure([parts[0], forged, parts[2]].joined(separator: ".")) == .invalidSignature)
    }

    @Test func rejectsATamperedSignature() async {
        let token = JWTSigner.sign(JWTClaims(subject: "user-1"), secret: Self.secret)
        var bytes = Array(token.utf8)
        bytes[bytes.count - 2] = bytes[bytes.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(await Self.failure(String(decoding: bytes, as: UTF8.self)) == .invalidSignature)
        let parts = token.split(separator: ".").map(String.init)
        for cut in [
            parts[0] + "." + parts[1] + ".", parts[0] + "." + parts[1] + "." + String(parts[2].dropLast(3)),
            parts[0] + "." + parts[1] + "." + parts[2] + "AAAA",
        ] {
            #expect(await Self.failure(cut) != nil, "\(cut)")
        }
    }

    /// Correctly signed with the secret, so only the algorithm refuses them: `none` and friends,
    /// and provider algorithms while no JWKS is configured.
    @Test(arguments: ["none", "None", "HS384", "HS512", "RS256", "ES256", "EdDSA", "hs256", ""])
    func rejectsOtherAlgorithmsEvenWhenCorrectlySigned(_ algorithm: String) async {
        let token = Self.token(header: #"{"alg":"\#(algorithm)","typ":"JWT"}"#, payload: #"{"sub":"u"}"#)
        #expect(await Self.failure(token) == .unsupportedAlgorithm(algorithm))
    }

    @Test func rejectsAlgNoneWithAnEmptySignature() async {
        let header = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(Array(#"{"sub":"admin"}"#.utf8))
        #expect(await Self.failure("\(header).\(payload).") == .unsupportedAlgorithm("none"))
    }

    @Test func withoutASecretHS256IsRefused() async {
        let verifier = await TokenVerifier(secret: nil)
        #expect(!verifier.isConfigured)
        let token = JWTSigner.sign(JWTClaims(subject: "u"), secret: Self.secret)
        #expect(await Self.failure(token, verifier: verifier) == .unsupportedAlgorithm("HS256"))
    }

    @Test(arguments: [
        #"{"typ":"JWT"}"#, #"{"alg":null}"#, #"{"alg":256}"#, "[]", "not json", "",
        #"{"alg":"HS256","crit":["exp"]}"#, #"{"alg":"HS256","kid":7}"#,
    ])
    func rejectsInvalidHeaders(_ header: String) async {
        let token = Self.token(header: header, payload: #"{"sub":"u"}"#)
        #expect(await Self.failure(token) == .invalidHeader)
    }

    @Test(arguments: [
        #"{"exp":"tomorrow"}"#, #"{"nbf":true}"#, #"{"sub":42}"#, #"{"iat":[1]}"#, "[]", "null", "nope", "",
        #"{"exp":1e400}"#, #"{"sub":"u"} x"#, #"{"sub":"u""#, #"{"iss":1}"#, #"{"aud":{}}"#,
    ])
    func rejectsInvalidClaims(_ payload: String) async {
        let token = Self.token(header: #"{"alg":"HS256","typ":"JWT"}"#, payload: payload)
        #expect(await Self.failure(token) != nil, "\(payload)")
    }

    @Test(arguments: ["", "abc", "a.b", "a.b.c.d", "...", "a..b.c", ".."])
    func rejectsWrongSegmentCounts(_ token: String) async {
        let error = await Self.failure(token)
        #expect(error == .malformed || error == .invalidHeader, "\(token)")
    }

    @Test func rejectsBadBase64() async {
        let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(Array(#"{"sub":"u"}"#.utf8))
        let valid = Self.token(encodedHeader: header, encodedPayload: payload)
        let signature = String(valid.split(separator: ".")[2])
        // Correctly signed, so only the encoding is wrong.
        #expect(await Self.failure(Self.token(encodedHeader: "e+J9", encodedPayload: payload)) != nil)
        #expect(await Self.failure(Self.token(encodedHeader: header, encodedPayload: "e/J9")) != nil)
        #expect(await Self.failure("\(header).\(payload).a b") != nil)
        #expect(await Self.failure("\(header).\(payload).\(signature.dropLast())!") != nil)
    }

    @Test func rejectsOversizedTokensUnread() async {
        let padding = String(repeating: "a", count: TokenVerifier.maximumTokenSize)
        let token = JWTSigner.sign(payloadJSON: Array(#"{"sub":"\#(padding)"}"#.utf8), secret: Self.secret)
        #expect(token.utf8.count > TokenVerifier.maximumTokenSize)
        #expect(await Self.failure(token) == .tooLarge)
        #expect(await Self.failure(String(repeating: ".", count: TokenVerifier.maximumTokenSize + 1)) == .tooLarge)
    }

    @Test func issuerIsCheckedWhenConfigured() async {
        let verifier = await Self.verifier(issuer: "https://idp.example/realms/chat")
        let right = Self.token(
            header: #"{"alg":"HS256"}"#, payload: #"{"sub":"u","iss":"https://idp.example/realms/chat"}"#)
        let wrong = Self.token(header: #"{"alg":"HS256"}"#, payload: #"{"sub":"u","iss":"https://evil.example"}"#)
        let missing = Self.token(header: #"{"alg":"HS256"}"#, payload: #"{"sub":"u"}"#)
        #expect(await Self.failure(right, verifier: verifier) == nil)
        #expect(await Self.failure(wrong, verifier: verifier) == .wrongIssuer)
        #expect(await Self.failure(missing, verifier: verifier) == .wrongIssuer)
        // Unset: any issuer passes.
        #expect(await Self.failure(wrong) == nil)
    }

    @Test func audienceIsCheckedWhenConfigured() async {
        let verifier = await Self.verifier(audience: "chat-service")
        let single = Self.token(header: #"{"alg":"HS256"}"#, payload: #"{"sub":"u","aud":"chat-service"}"#)
        let list = Self.token(header: #"{"alg":"HS256"}"#, payload: #"{"sub":"u","aud":["billing","chat-service"]}"#)
        let other = Self.token(header: #"{"alg":"HS256"}"#, payload: #"{"sub":"u","aud":["billing"]}"#)
        let missing = Self.token(header: #"{"alg":"HS256"}"#, payload: #"{"sub":"u"}"#)
        #expect(await Self.failure(single, verifier: verifier) == nil)
        #expect(await Self.failure(list, verifier: verifier) == nil)
        #expect(await Self.failure(other, verifier: verifier) == .wrongAudience)
        #expect(await Self.failure(missing, verifier: verifier) == .wrongAudience)
    }

    @Test func base64URLRoundTripsAndIsCanonical() {
        var random = SeededRandom(seed: 3)
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let encoded = Base64URL.encode(bytes)
            #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
            #expect(
                encoded
                    == Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                    .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: ""))
            #expect(Base64URL.decode(Array(encoded.utf8)) == bytes)
        }
        #expect(Base64URL.decode(Array("A".utf8)) == nil)
        #expect(Base64URL.decode(Array("QQ".utf8)) == [0x41])
    }

    @Test func verifierIsUsableFromManyTasksAtOnce() async {
        let token = JWTSigner.sign(JWTClaims(subject: "u"), secret: Self.secret)
        let verifier = await Self.verifier()
        let accepted = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<200 {
                group.addTask { (try? await verifier.verify(token, now: Self.now).get()) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(accepted == 200)
    }
}
