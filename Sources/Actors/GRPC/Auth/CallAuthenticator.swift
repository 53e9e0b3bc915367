import Actors
import Crypto
import Foundation
import GRPCCore

/// The caller of a user RPC, from its verified token.
public struct CallerIdentity: Sendable, Hashable {
    /// The token's `sub`; nil for a token without one.
    public var subject: String?
}

/// Checks the `authorization` metadata of gRPC calls with the same rules as the HTTP routes:
/// `Bearer <JWT>` (HS256 with JWT_SECRET, `exp`/`nbf` with the verifier's leeway) for user RPCs,
/// `Bearer <ADMIN_TOKEN>` for operator RPCs.
///
/// Failures are `RPCError`s: UNAUTHENTICATED for a missing or invalid user token (HTTP 401),
/// PERMISSION_DENIED for a missing or wrong admin token (HTTP 403, which the admin routes answer
/// in both cases). Tokens are verified on every call (one HMAC): gRPC clients keep a connection
/// and the HTTP path's token cache is tied to HTTP requests.
public struct CallAuthenticator: Sendable {
    private let verifier: JWTVerifier?
    private let adminDigest: [UInt8]?

    /// Without a JWT secret every user call is refused, without an admin token every operator
    /// call: neither is ever open by accident.
    public init(jwtSecret: String?, adminToken: String?) {
        verifier = jwtSecret.flatMap { $0.isEmpty ? nil : JWTVerifier(secret: Array($0.utf8)) }
        adminDigest = adminToken.flatMap { $0.isEmpty ? nil : Array(SHA256.hash(data: Array($0.utf8))) }
    }

    /// The caller of a user RPC, or UNAUTHENTICATED.
    public func user(_ metadata: Metadata, now: Date = Date()) throws(RPCError) -> CallerIdentity {
        guard let verifier else {
            throw RPCError(code: .unauthenticated, message: "user authentication is not configured (JWT_SECRET)")
        }
        guard let token = Self.bearerToken(metadata) else {
            throw RPCError(code: .unauthenticated, message: "missing bearer token in the authorization metadata")
        }
        switch verifier.verify(String(token), now: now) {
        case .success(let claims):
            return CallerIdentity(subject: claims.subject)
        case .failure(let error):
            throw RPCError(code: .unauthenticated, message: "invalid token: \(error)")
        }
    }

    /// Passes an operator RPC, or throws PERMISSION_DENIED.
    public func admin(_ metadata: Metadata) throws(RPCError) {
        guard let adminDigest else {
            throw RPCError(code: .permissionDenied, message: "operator calls are disabled: ADMIN_TOKEN is not set")
        }
        // Comparing digests keeps the comparison's time independent of where the tokens differ.
        guard let token = Self.bearerToken(metadata),
            Self.constantTimeEqual(Array(SHA256.hash(data: Array(token.utf8))), adminDigest)
        else {
            throw RPCError(code: .permissionDenied, message: "a valid admin bearer token is required")
        }
    }

    /// The token of the first `authorization: Bearer <token>` value: the scheme in any case, the
    /// token without surrounding blanks; nil without one.
    static func bearerToken(_ metadata: Metadata) -> Substring? {
        guard let header = metadata[stringValues: "authorization"].first(where: { _ in true }) else { return nil }
        let trimmed = header.drop(while: { $0 == " " || $0 == "\t" })
        guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }),
            trimmed[..<space].lowercased() == "bearer"
        else { return nil }
        var token = trimmed[space...]
        while let first = token.first, first == " " || first == "\t" { token = token.dropFirst() }
        while let last = token.last, last == " " || last == "\t" { token = token.dropLast() }
        return token.isEmpty ? nil : token
    }

    private static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
