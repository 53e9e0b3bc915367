public import Foundation
import JWTKit

/// Verifies user tokens (JWT, RFC 7519) with vapor/jwt-kit, for the HTTP routes and gRPC alike.
///
/// A token is routed by its header's `alg` to the one kind of key that may check it:
/// - `HS256`: the shared secret (JWT_SECRET);
/// - `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512`, `ES256`, `ES384`, `ES512`, `EdDSA`:
///   the identity provider's published keys (``JWKSProvider``), by `kid`;
/// - anything else, `none` included: refused.
/// Each key then verifies with its own algorithm only, so an HS256 token "signed" with the
/// provider's public key meets the shared secret and fails, and an RS256 header over an HMAC
/// never reaches the secret. Then `exp` and `nbf` (with ``leeway``), and `iss` and `aud` when
/// JWT_ISSUER and JWT_AUDIENCE are set. A token that needs provider keys not fetched yet is
/// ``TokenError/keysUnavailable`` (503), never accepted.
public struct TokenVerifier: Sendable {
    /// Tokens longer than this many bytes are refused unread.
    public static let maximumTokenSize = 8 * 1024

    /// The algorithms the provider's keys may sign with.
    static let providerAlgorithms: Set<String> = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    ]

    /// Tolerance for clock differences when checking `exp` and `nbf`.
    public let leeway: Duration
    /// JWT_ISSUER.
    public let issuer: String?
    /// JWT_AUDIENCE.
    public let audience: String?
    private let secretKeys: JWTKeyCollection?
    private let provider: JWKSProvider?
    private let leewaySeconds: Double

    /// - Parameters:
    ///   - secret: JWT_SECRET; nil or empty refuses HS256 tokens.
    ///   - provider: the JWKS keys (JWT_JWKS_URL); nil refuses RS256, ES256 and EdDSA tokens.
    public init(
        secret: String?, provider: JWKSProvider? = nil, issuer: String? = nil, audience: String? = nil,
        leeway: Duration = .seconds(30)
    ) async {
        precondition(leeway >= .zero, "JWT leeway must not be negative")
        if let secret, !secret.isEmpty {
            let keys = JWTKeyCollection()
            await keys.add(hmac: HMACKey(from: Self.hmacKey(secret)), digestAlgorithm: .sha256)
            secretKeys = keys
        } else {
            secretKeys = nil
        }
        self.provider = provider
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        leewaySeconds = leeway.timeInterval
    }

    /// The secret's bytes, zero-padded to 32. HMAC pads a key shorter than its 64-byte block
    /// with zeros itself, so the MACs are exactly those of the secret as given (tokens minted
    /// with it keep verifying); jwt-kit asserts a key of at least the hash's size in debug
    /// builds. Start-up warns about such a secret (RFC 7518 §3.2 asks for 32 bytes or more).
    static func hmacKey(_ secret: String) -> [UInt8] {
        var bytes = Array(secret.utf8)
        if bytes.count < 32 { bytes += [UInt8](repeating: 0, count: 32 - bytes.count) }
        return bytes
    }

    /// Whether any kind of token can pass: false refuses every user request.
    public var isConfigured: Bool { secretKeys != nil || provider != nil }

    /// Checks `token` (without the `Bearer ` prefix) at time `now`.
    public func verify(_ token: String, now: Date) async -> Result<JWTClaims, TokenError> {
        guard token.utf8.count <= Self.maximumTokenSize else { return .failure(.tooLarge) }
        let header: TokenHeader
        switch TokenHeader.parse(token) {
        case .failure(let error): return .failure(error)
        case .success(let parsed): header = parsed
        }
        let payload: UserTokenPayload
        switch await verifySignature(token, header: header) {
        case .failure(let error): return .failure(error)
        case .success(let verified): payload = verified
        }
        let claims = payload.claims
        let nowSeconds = now.timeIntervalSince1970
        if let expiresAt = claims.expiresAt, nowSeconds >= expiresAt.timeIntervalSince1970 + leewaySeconds {
            return .failure(.expired)
        }
        if let notBefore = claims.notBefore, nowSeconds < notBefore.timeIntervalSince1970 - leewaySeconds {
            return .failure(.notYetValid)
        }
        if let issuer, payload.iss?.value != issuer { return .failure(.wrongIssuer) }
        if let audience, payload.aud?.value.contains(audience) != true { return .failure(.wrongAudience) }
        return .success(claims)
    }

    private func verifySignature(_ token: String, header: TokenHeader) async -> Result<UserTokenPayload, TokenError> {
        let keys: JWTKeyCollection
        var iterateKeys = false
        if header.algorithm == "HS256", let secretKeys {
            keys = secretKeys
        } else if Self.providerAlgorithms.contains(header.algorithm), let provider {
            switch await provider.keys(for: header.keyID) {
            case .unavailable: return .failure(.keysUnavailable)
            case .unknownKey: return .failure(.unknownKey(header.keyID ?? ""))
            case .found(let found): keys = found
            }
            // Without a kid, any of the provider's keys may have signed it.
            iterateKeys = header.keyID == nil
        } else {
            return .failure(.unsupportedAlgorithm(header.algorithm))
        }
        do {
            return .success(try await keys.verify(token, as: UserTokenPayload.self, iteratingKeys: iterateKeys))
        } catch let error as JWTKit.JWTError {
            switch error.errorType {
            case .signatureVerificationFailed: return .failure(.invalidSignature)
            case .malformedToken: return .failure(.malformed)
            default: return .failure(.invalidClaims)
            }
        } catch is DecodingError {
            return .failure(.invalidClaims)
        } catch {
            // A key that cannot check this algorithm (an EC key for an RS256 header), or a
            // payload that does not decode.
            return .failure(.invalidSignature)
        }
    }
}
