/// Why a token was refused. Every case maps to HTTP 401; the case is for logs and metrics.
public enum JWTError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Longer than ``JWTVerifier/maximumTokenSize``; refused before any parsing.
    case tooLarge
    /// Not three dot-separated segments.
    case malformed
    /// A segment that is not unpadded base64url.
    case invalidBase64
    /// A header that is not a JSON object with a string `alg`, or that names critical
    /// extensions (`crit`), none of which are understood.
    case invalidHeader
    /// `alg` is not `HS256`, including `none`.
    case unsupportedAlgorithm(String)
    /// The HMAC does not match: another secret, or a tampered header or payload.
    case invalidSignature
    /// A payload that is not a JSON object, or claims of the wrong type (e.g. `exp` as a string).
    case invalidClaims
    /// Past `exp` plus the leeway.
    case expired
    /// Before `nbf` minus the leeway.
    case notYetValid

    public var description: String {
        switch self {
        case .tooLarge: "token too large"
        case .malformed: "token is not three segments"
        case .invalidBase64: "token segment is not base64url"
        case .invalidHeader: "token header is invalid"
        case .unsupportedAlgorithm(let algorithm): "unsupported algorithm \(String(reflecting: String(algorithm.prefix(32))))"
        case .invalidSignature: "token signature does not match"
        case .invalidClaims: "token claims are invalid"
        case .expired: "token expired"
        case .notYetValid: "token not yet valid"
        }
    }
}
