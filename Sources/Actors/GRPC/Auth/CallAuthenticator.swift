import Actors
public import Foundation
public import GRPCCore

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
    private let adminToken: AdminToken?

    /// Without a JWT secret every user call is refused, without an admin token every operator
    /// call: neither is ever open by accident.
    public init(jwtSecret: String?, adminToken: String?) {
        verifier = jwtSecret.flatMap { $0.isEmpty ? nil : JWTVerifier(secret: Array($0.utf8)) }
        self.adminToken = AdminToken(adminToken)
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
        guard let adminToken else {
            throw RPCError(code: .permissionDenied, message: "operator calls are disabled: ADMIN_TOKEN is not set")
        }
        guard let token = Self.bearerToken(metadata), adminToken.matches(token) else {
            throw RPCError(code: .permissionDenied, message: "a valid admin bearer token is required")
        }
    }

    /// The token of the first `authorization` value (``BearerToken/parse(_:)``, as for HTTP).
    static func bearerToken(_ metadata: Metadata) -> Substring? {
        metadata[stringValues: "authorization"].first(where: { _ in true }).flatMap(BearerToken.parse)
    }
}
