import Crypto
import Foundation
import Testing

@testable import Actors

@Suite("JWTVerifier")
struct JWTVerifierTests {
    static let secret = Array("test-secret-0123456789".utf8)
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let verifier = JWTVerifier(secret: secret)

    static func token(header: String, payload: String, secret: [UInt8] = secret) -> String {
        token(encodedHeader: Base64URL.encode(Array(header.utf8)), encodedPayload: Base64URL.encode(Array(payload.utf8)))
    }

    /// Signs whatever segment text it is given, valid base64url or not.
    static func token(encodedHeader: String, encodedPayload: String, secret: [UInt8] = secret) -> String {
        let signingInput = encodedHeader + "." + encodedPayload
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: secret))
        return signingInput + "." + Base64URL.encode(Array(mac))
    }

    static func failure(_ token: String, at now: Date = now) -> JWTError? {
        guard case .failure(let error) = verifier.verify(token, now: now) else { return nil }
        return error
    }

    @Test func acceptsAValidToken() throws {
        let claims = JWTClaims(
            subject: "user-1", expiresAt: Self.now.addingTimeInterval(600),
            notBefore: Self.now.addingTimeInterval(-60), issuedAt: Self.now.addingTimeInterval(-60))
        let token = JWTSigner.sign(claims, secret: Self.secret)
        let verified = try Self.verifier.verify(token, now: Self.now).get()
        #expect(verified == claims)
    }

    @Test func acceptsTokensWithoutTimeClaims() throws {
        let token = JWTSigner.sign(JWTClaims(subject: "u"), secret: Self.secret)
        #expect(try Self.verifier.verify(token, now: Self.now).get().subject == "u")
        let empty = JWTSigner.sign(JWTClaims(), secret: Self.secret)
        #expect(try Self.verifier.verify(empty, now: Self.now).get() == JWTClaims())
    }

    @Test func acceptsOtherWellFormedHS256HeadersAndFractionalDates() throws {
        let token = Self.token(header: #"{"typ":"JWT", "alg":"HS256","kid":"k1"}"#, payload: #"{"sub":"s","exp":1800000000.5,"custom":[1]}"#)
        let claims = try Self.verifier.verify(token, now: Self.now).get()
        #expect(claims.subject == "s")
        #expect(claims.expiresAt == Date(timeIntervalSince1970: 1_800_000_000.5))
    }

    @Test func readsEscapedStringsAndNegativeOrExponentDates() throws {
        let token = Self.token(
            header: #"{"typ":"JWT","alg":"HS\u0032\u00356"}"#,
            payload: #"{"sub":"\u00e9\"x","nbf":-1.5e2,"exp":2e9}"#)
        let claims = try Self.verifier.verify(token, now: Self.now).get()
        #expect(claims.subject == "é\"x")
        #expect(claims.notBefore == Date(timeIntervalSince1970: -150))
        #expect(claims.expiresAt == Date(timeIntervalSince1970: 2e9))
    }

    @Test func signerWritesTheStandardHeader() throws {
        let token = JWTSigner.sign(JWTClaims(subject: "u", expiresAt: Date(timeIntervalSince1970: 1_800_000_000.9)), secret: Self.secret)
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        #expect(parts.count == 3)
        #expect(Base64URL.decode(Array(parts[0].utf8)).map { String(decoding: $0, as: UTF8.self) } == #"{"alg":"HS256","typ":"JWT"}"#)
        #expect(Base64URL.decode(Array(parts[1].utf8)).map { String(decoding: $0, as: UTF8.self) } == #"{"sub":"u","exp":1800000000}"#)
        #expect(token == Self.token(header: #"{"alg":"HS256","typ":"JWT"}"#, payload: #"{"sub":"u","exp":1800000000}"#))
    }

    @Test func expiryHonoursTheLeeway() {
        let token = JWTSigner.sign(JWTClaims(expiresAt: Self.now), secret: Self.secret)
        #expect(Self.failure(token, at: Self.now.addingTimeInterval(29)) == nil)
        #expect(Self.failure(token, at: Self.now.addingTimeInterval(30)) == .expired)
        #expect(Self.failure(token, at: Self.now.addingTimeInterval(3600)) == .expired)
        let strict = JWTVerifier(secret: Self.secret, leeway: .zero)
        #expect(throws: Never.self) { try strict.verify(token, now: Self.now.addingTimeInterval(-1)).get() }
        #expect(strict.verify(token, now: Self.now) == .failure(.expired))
    }

    @Test func notBeforeHonoursTheLeeway() {
        let token = JWTSigner.sign(JWTClaims(notBefore: Self.now), secret: Self.secret)
        #expect(Self.failure(token, at: Self.now.addingTimeInterval(-30)) == nil)
        #expect(Self.failure(token, at: Self.now.addingTimeInterval(-31)) == .notYetValid)
        #expect(Self.failure(token, at: Self.now) == nil)
    }

    @Test func rejectsATokenSignedWithAnotherSecret() {
        let token = JWTSigner.sign(JWTClaims(subject: "u"), secret: Array("other-secret".utf8))
        #expect(Self.failure(token) == .invalidSignature)
    }

    @Test func rejectsATamperedPayload() {
        let token = JWTSigner.sign(JWTClaims(subject: "user-1"), secret: Self.secret)
        let parts = token.split(separator: ".").map(String.init)
        let forged = Base64URL.encode(Array(#"{"sub":"admin"}"#.utf8))
        #expect(Self.failure([parts[0], forged, parts[2]].joined(separator: ".")) == .invalidSignature)
    }

    @Test func rejectsATamperedSignature() {
        let token = JWTSigner.sign(JWTClaims(subject: "user-1"), secret: Self.secret)
        var bytes = Array(token.utf8)
        bytes[bytes.count - 2] = bytes[bytes.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(Self.failure(String(decoding: bytes, as: UTF8.self)) == .invalidSignature)
        let parts = token.split(separator: ".").map(String.init)
        #expect(Self.failure(parts[0] + "." + parts[1] + ".") == .invalidSignature)
        #expect(Self.failure(parts[0] + "." + parts[1] + "." + String(parts[2].dropLast(3))) == .invalidSignature)
        #expect(Self.failure(parts[0] + "." + parts[1] + "." + parts[2] + "AAAA") == .invalidSignature)
    }

    @Test(arguments: ["none", "None", "HS384", "HS512", "RS256", "ES256", "hs256", ""])
    func rejectsOtherAlgorithmsEvenWhenCorrectlySigned(_ algorithm: String) {
        let token = Self.token(header: #"{"alg":"\#(algorithm)","typ":"JWT"}"#, payload: #"{"sub":"u"}"#)
        #expect(Self.failure(token) == .unsupportedAlgorithm(algorithm))
    }

    @Test func rejectsAlgNoneWithAnEmptySignature() {
        let header = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(Array(#"{"sub":"admin"}"#.utf8))
        #expect(Self.failure("\(header).\(payload).") == .unsupportedAlgorithm("none"))
    }

    @Test(arguments: [
        #"{"typ":"JWT"}"#, #"{"alg":null}"#, #"{"alg":256}"#, "[]", "not json", "",
        #"{"alg":"HS256","crit":["exp"]}"#,
    ])
    func rejectsInvalidHeaders(_ header: String) {
        let token = Self.token(header: header, payload: #"{"sub":"u"}"#)
        #expect(Self.failure(token) == .invalidHeader)
    }

    @Test(arguments: [
        #"{"exp":"tomorrow"}"#, #"{"nbf":true}"#, #"{"sub":42}"#, #"{"iat":[1]}"#, "[]", "null", "nope", "",
        #"{"exp":1e400}"#, #"{"exp":null}"#, #"{"sub":"u"} x"#, #"{"sub":"u""#, #"{"sub":"u",}"#,
    ])
    func rejectsInvalidClaims(_ payload: String) {
        let token = Self.token(header: #"{"alg":"HS256","typ":"JWT"}"#, payload: payload)
        #expect(Self.failure(token) == .invalidClaims)
    }

    @Test(arguments: [
        ("", JWTError.malformed), ("abc", .malformed), ("a.b", .malformed), ("a.b.c.d", .malformed),
        ("...", .malformed), ("a..b.c", .malformed), ("..", .invalidHeader),
    ])
    func rejectsWrongSegmentCounts(_ token: String, _ expected: JWTError) {
        #expect(Self.failure(token) == expected, "\(token)")
    }

    @Test func rejectsBadBase64() {
        let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(Array(#"{"sub":"u"}"#.utf8))
        let valid = Self.token(encodedHeader: header, encodedPayload: payload)
        let signature = String(valid.split(separator: ".")[2])
        // Correctly signed, so only the encoding is wrong.
        #expect(Self.failure(Self.token(encodedHeader: "e+J9", encodedPayload: payload)) == .invalidBase64)
        #expect(Self.failure(Self.token(encodedHeader: header + "=", encodedPayload: payload)) == .invalidBase64)
        #expect(Self.failure(Self.token(encodedHeader: header, encodedPayload: payload + "=")) == .invalidBase64)
        #expect(Self.failure(Self.token(encodedHeader: header, encodedPayload: "e/J9")) == .invalidBase64)
        #expect(Self.failure(Self.token(encodedHeader: header, encodedPayload: "QQQQQ")) == .invalidBase64)
        #expect(Self.failure("\(header).\(payload).\(signature)=") == .invalidBase64)
        #expect(Self.failure("\(header).\(payload).a b") == .invalidBase64)
        #expect(Self.failure("\(header).\(payload).\(signature.dropLast())!") == .invalidBase64)
    }

    @Test func rejectsOversizedTokensUnread() {
        let padding = String(repeating: "a", count: JWTVerifier.maximumTokenSize)
        let token = JWTSigner.sign(payloadJSON: Array(#"{"sub":"\#(padding)"}"#.utf8), secret: Self.secret)
        #expect(token.utf8.count > JWTVerifier.maximumTokenSize)
        #expect(Self.failure(token) == .tooLarge)
        #expect(Self.failure(String(repeating: ".", count: JWTVerifier.maximumTokenSize + 1)) == .tooLarge)
    }

    @Test func acceptsATokenRightAtTheSizeLimit() throws {
        // Grow the subject until the token is exactly at the limit.
        var subjectLength = 6000
        var token = ""
        for _ in 0..<2000 {
            token = JWTSigner.sign(JWTClaims(subject: String(repeating: "s", count: subjectLength)), secret: Self.secret)
            if token.utf8.count >= JWTVerifier.maximumTokenSize - 3 { break }
            subjectLength += 1
        }
        #expect(token.utf8.count <= JWTVerifier.maximumTokenSize)
        #expect(token.utf8.count >= JWTVerifier.maximumTokenSize - 3)
        #expect(Self.failure(token) == nil)
    }

    @Test func base64URLRoundTripsAndIsCanonical() {
        var random = SeededRandom(seed: 3)
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let encoded = Base64URL.encode(bytes)
            #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
            #expect(encoded == Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: ""))
            #expect(Base64URL.decode(Array(encoded.utf8)) == bytes)
        }
        #expect(Base64URL.decode(Array("A".utf8)) == nil)
        #expect(Base64URL.decode(Array("QR".utf8)) == nil)  // "QQ" is the canonical form of [0x41]
        #expect(Base64URL.decode(Array("QQ".utf8)) == [0x41])
        #expect(Base64URL.decode(Array("QUF".utf8)) == nil)  // "QUE" is canonical for "AA"
        #expect(Base64URL.decode(Array("QUE".utf8)) == [0x41, 0x41])
    }

    @Test func verifierIsUsableFromManyTasksAtOnce() async {
        let token = JWTSigner.sign(JWTClaims(subject: "u"), secret: Self.secret)
        let verifier = Self.verifier
        let accepted = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<200 {
                group.addTask { (try? verifier.verify(token, now: Self.now).get()) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(accepted == 200)
    }
}
