import Crypto
public import Foundation

/// Verifies HS256 JSON Web Tokens (RFC 7519) for user requests to `/v1/*`.
///
/// Only HS256 is accepted, whatever the header asks for, so `alg: none` and algorithm-confusion
/// tokens fail. The signature is compared in constant time. Checks run cheapest first: size,
/// shape, algorithm, signature, and only then is the payload parsed.
public struct JWTVerifier: Sendable {
    /// Tokens longer than this many bytes are refused unread.
    public static let maximumTokenSize = 8 * 1024

    /// Tolerance for clock differences when checking `exp` and `nbf`.
    public let leeway: Duration

    private let key: SharedKey
    private let leewaySeconds: Double

    /// - Parameters:
    ///   - secret: the shared HMAC secret (`JWT_SECRET`); must not be empty.
    ///   - leeway: tolerance for clock differences; must not be negative.
    public init(secret: [UInt8], leeway: Duration = .seconds(30)) {
        precondition(!secret.isEmpty, "JWT secret must not be empty")
        precondition(leeway >= .zero, "JWT leeway must not be negative")
        key = SharedKey(SymmetricKey(data: secret))
        self.leeway = leeway
        let parts = leeway.components
        leewaySeconds = Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    /// Checks `token` (without the `Bearer ` prefix) at time `now`.
    public func verify(_ token: String, now: Date) -> Result<JWTClaims, JWTError> {
        let utf8 = token.utf8
        guard utf8.count <= Self.maximumTokenSize else { return .failure(.tooLarge) }
        guard let segments = Self.segments(of: Array(utf8)) else { return .failure(.malformed) }

        if !segments.header.elementsEqual(JWTSigner.encodedHeader) {
            // Not the header this service mints; read it properly.
            switch Self.algorithm(ofEncodedHeader: segments.header) {
            case .failure(let error): return .failure(error)
            case .success(let algorithm) where algorithm != "HS256": return .failure(.unsupportedAlgorithm(algorithm))
            case .success: break
            }
        }

        guard let signature = Base64URL.decode(segments.signature) else { return .failure(.invalidBase64) }
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: segments.signingInput, using: key.value)
        else { return .failure(.invalidSignature) }

        guard let payload = Base64URL.decode(segments.payload) else { return .failure(.invalidBase64) }
        let claims: JWTClaims
        switch Self.claims(fromPayload: payload) {
        case .failure(let error): return .failure(error)
        case .success(let decoded): claims = decoded
        }

        let nowSeconds = now.timeIntervalSince1970
        if let expiresAt = claims.expiresAt, nowSeconds >= expiresAt.timeIntervalSince1970 + leewaySeconds {
            return .failure(.expired)
        }
        if let notBefore = claims.notBefore, nowSeconds < notBefore.timeIntervalSince1970 - leewaySeconds {
            return .failure(.notYetValid)
        }
        return .success(claims)
    }

    /// swift-crypto does not mark `SymmetricKey` as `Sendable` on Linux.
    // @unchecked Sendable holds: the key is set once in init and only ever read; HMAC copies the
    // key material it needs, so concurrent verifications never write to shared state.
    private final class SharedKey: @unchecked Sendable {
        let value: SymmetricKey
        init(_ value: SymmetricKey) { self.value = value }
    }

    private struct Segments {
        var header: ArraySlice<UInt8>
        var payload: ArraySlice<UInt8>
        var signature: ArraySlice<UInt8>
        /// `header.payload`, the bytes the signature covers.
        var signingInput: ArraySlice<UInt8>
    }

    private static func segments(of token: [UInt8]) -> Segments? {
        let dot = UInt8(ascii: ".")
        guard let firstDot = token.firstIndex(of: dot),
            let secondDot = token[(firstDot + 1)...].firstIndex(of: dot),
            !token[(secondDot + 1)...].contains(dot)
        else { return nil }
        return Segments(
            header: token[..<firstDot],
            payload: token[(firstDot + 1)..<secondDot],
            signature: token[(secondDot + 1)...],
            signingInput: token[..<secondDot]
        )
    }

    /// The header's `alg`. A header naming critical extensions (`crit`) is refused: none are
    /// understood, and RFC 7515 §4.1.11 requires refusing what is not understood.
    private static func algorithm(ofEncodedHeader encoded: ArraySlice<UInt8>) -> Result<String, JWTError> {
        guard let json = Base64URL.decode(encoded) else { return .failure(.invalidBase64) }
        var scanner = JSONScanner(json)
        var algorithm: String?
        do {
            guard try scanner.peekKind() == .object else { return .failure(.invalidHeader) }
            try scanner.beginObject()
            var isFirst = true
            while let key = try scanner.nextKey(isFirst: &isFirst) {
                if JSONScanner.bytes(key, equal: "alg") {
                    guard try scanner.peekKind() == .string else { return .failure(.invalidHeader) }
                    algorithm = try scanner.readString()
                } else if JSONScanner.bytes(key, equal: "crit") {
                    return .failure(.invalidHeader)
                } else {
                    try scanner.skipValue()
                }
            }
            try scanner.expectEnd()
        } catch {
            return .failure(.invalidHeader)
        }
        guard let algorithm else { return .failure(.invalidHeader) }
        return .success(algorithm)
    }

    /// Reads the claims with the hand-written scanner rather than `JSONDecoder`: this runs on
    /// every authenticated request. Unknown claims are skipped.
    private static func claims(fromPayload json: [UInt8]) -> Result<JWTClaims, JWTError> {
        var scanner = JSONScanner(json)
        var claims = JWTClaims()
        do {
            guard try scanner.peekKind() == .object else { return .failure(.invalidClaims) }
            try scanner.beginObject()
            var isFirst = true
            while let key = try scanner.nextKey(isFirst: &isFirst) {
                if JSONScanner.bytes(key, equal: "sub") {
                    guard try scanner.peekKind() == .string else { return .failure(.invalidClaims) }
                    claims.subject = try scanner.readString()
                } else if JSONScanner.bytes(key, equal: "exp") {
                    guard let date = try numericDate(&scanner) else { return .failure(.invalidClaims) }
                    claims.expiresAt = date
                } else if JSONScanner.bytes(key, equal: "nbf") {
                    guard let date = try numericDate(&scanner) else { return .failure(.invalidClaims) }
                    claims.notBefore = date
                } else if JSONScanner.bytes(key, equal: "iat") {
                    guard let date = try numericDate(&scanner) else { return .failure(.invalidClaims) }
                    claims.issuedAt = date
                } else {
                    try scanner.skipValue()
                }
            }
            try scanner.expectEnd()
        } catch {
            return .failure(.invalidClaims)
        }
        return .success(claims)
    }

    /// A NumericDate claim (seconds since 1970, possibly fractional); `nil` if not a finite number.
    private static func numericDate(_ scanner: inout JSONScanner) throws(DecodingFailure) -> Date? {
        guard try scanner.peekKind() == .number, let seconds = try scanner.readDouble() else { return nil }
        return Date(timeIntervalSince1970: seconds)
    }
}
