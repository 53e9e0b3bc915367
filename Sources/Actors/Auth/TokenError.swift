/// Why a user token was refused. Every case but ``keysUnavailable`` maps to HTTP 401
/// (UNAUTHENTICATED); the case is for logs and messages.
public enum TokenError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Longer than ``TokenVerifier/maximumTokenSize``; refused before any parsing.
    case tooLarge
    /// Not three dot-separated segments of base64url, or a payload jwt-kit cannot read.
    case malformed
    /// A header that is not a JSON object with a string `alg` (and a string `kid`, if any), or
    /// that names critical extensions (`crit`), none of which are understood.
    case invalidHeader
    /// An `alg` no configured key accepts: `none`, HS256 without JWT_SECRET, RS256/ES256/EdDSA
    /// without JWT_JWKS_URL, or one not supported at all.
    case unsupportedAlgorithm(String)
    /// The identity provider's key set does not hold the token's `kid`, even after fetching it
    /// again.
    case unknownKey(String)
    /// The signature does not match: another key, or a tampered header or payload.
    case invalidSignature
    /// Claims of the wrong type (e.g. `exp` as a string).
    case invalidClaims
    /// Past `exp` plus the leeway.
    case expired
    /// Before `nbf` minus the leeway.
    case notYetValid
    /// `iss` is not JWT_ISSUER.
    case wrongIssuer
    /// `aud` does not contain JWT_AUDIENCE.
    case wrongAudience
    /// The token needs the identity provider's keys, which have not been fetched yet: 503,
    /// never an acceptance.
    case keysUnavailable

    public var description: String {
        switch self {
        case .tooLarge: "token too large"
        case .malformed: "token is malformed"
        case .invalidHeader: "token header is invalid"
        case .unsupportedAlgorithm(let algorithm):
            "unsupported algorithm \(String(reflecting: String(algorithm.prefix(32))))"
        case .unknownKey(let kid): "unknown key id \(String(reflecting: String(kid.prefix(64))))"
        case .invalidSignature: "token signature does not match"
        case .invalidClaims: "token claims are invalid"
        case .expired: "token expired"
        case .notYetValid: "token not yet valid"
        case .wrongIssuer: "token issuer is not accepted"
        case .wrongAudience: "token audience is not accepted"
        case .keysUnavailable: "the identity provider's keys are not available yet"
        }
    }
}
