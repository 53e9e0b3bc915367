public import Actors
public import Foundation
public import GRPCCore

/// The caller of a user RPC, from its verified token.
public struct CallerIdentity: Sendable, Hashable {
    /// The token's `sub`; nil for a token without one.
    public var subject: String?
}

/// Checks the `authorization` metadata of gRPC calls with the same rules and the same
/// ``TokenVerifier`` as the HTTP routes: `Bearer <JWT>` (HS256 with JWT_SECRET, or a key of the
/// identity provider's JWKS; `exp`/`nbf` with the verifier's leeway, `iss`/`aud` when set) for
/// user RPCs, `Bearer <ADMIN_TOKEN>` for operator RPCs.
///
/// Failures are `RPCError`s: UNAUTHENTICATED for a missing or invalid user token (HTTP 401),
/// UNAVAILABLE while the provider's keys are not fetched yet (HTTP 503), PERMISSION_DENIED for
/// a missing or wrong admin token (HTTP 403, which the admin routes answer in both cases).
/// Tokens are verified on every call: gRPC clients keep a connection and the HTTP path's token
/// cache is tied to HTTP requests.
public struct CallAuthenticator: Sendable {
    private let verifier: TokenVerifier
    private let adminToken: AdminToken?

    /// A verifier without keys refuses every user call, no admin token every operator call:
    /// neither is ever open by accident.
    public init(verifier: TokenVerifier, adminToken: String?) {
        self.verifier = verifier
        self.adminToken = AdminToken(adminToken)
    }

    /// The caller of a user RPC, or UNAUTHENTICATED (UNAVAILABLE while keys are missing).
    public func user(_ metadata: Metadata, now: Date = Date()) async throws(RPCError) -> CallerIdentity {
        guard verifier.isConfigured else {
            throw RPCError(
                code: .unauthenticated, message: "user authentication is not configured (JWT_SECRET, JWT_JWKS_URL)")
        }
        guard let token = Self.bearerToken(metadata) else {
            throw RPCError(code: .unauthenticated, message: "missing bearer token in the authorization metadata")
        }
        switch await verifier.verify(String(token), now: now) {
        case .success(let claims):
            return CallerIdentity(subject: claims.subject)
        case .failure(.keysUnavailable):
            throw RPCError(
                code: .unavailable, message: "auth_unavailable: the identity provider's keys are not available yet")
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
