public import ChatRuntime
public import Foundation

/// Checks `Authorization: Bearer <JWT>` on user routes (`/v1/*`) with the ``TokenVerifier``.
///
/// Runs on every user request, so tokens that verified are remembered with their validity
/// window (``VerifiedTokenCache``): a client that sends the same token again costs a lookup,
/// not a signature check, and the read route's answer from L1 inside the HTTP callback
/// (``isRemembered(_:now:)``) needs no task. Expiry is still checked on every request.
public struct UserAuthenticator: Sendable {
    /// Tokens remembered at most; a few kilobytes each, with their keys.
    public static let defaultTokenCacheCapacity = 4096

    private let verifier: TokenVerifier
    private let verified: VerifiedTokenCache
    private let leewaySeconds: Double

    /// A verifier with no key refuses every request: user routes are never open by accident.
    /// - Parameter tokenCacheCapacity: verified tokens remembered; 0 verifies every request.
    public init(verifier: TokenVerifier, tokenCacheCapacity: Int = UserAuthenticator.defaultTokenCacheCapacity) {
        self.verifier = verifier
        verified = VerifiedTokenCache(capacity: tokenCacheCapacity)
        leewaySeconds = verifier.leeway.timeInterval
    }

    /// With the shared secret only (HS256), as before JWKS support; for tests and tools.
    public init(secret: String?, tokenCacheCapacity: Int = UserAuthenticator.defaultTokenCacheCapacity) async {
        self.init(verifier: await TokenVerifier(secret: secret), tokenCacheCapacity: tokenCacheCapacity)
    }

    /// Whether the request carries a token verified recently and valid at `now`: the immediate
    /// path's check, without a signature check. False sends the request to the full check.
    public func isRemembered(_ request: HTTPRequest, now: Date = Date()) -> Bool {
        guard let token = bearerToken(request), let window = verified.window(of: token) else { return false }
        return window.contains(now.timeIntervalSince1970)
    }

    /// nil when the request may pass; otherwise the 401 (or 503) to send.
    public func reject(_ request: HTTPRequest, now: Date = Date()) async -> HTTPResponse? {
        switch await check(request, now: now) {
        case .success: nil
        case .failure(let rejection): rejection.response
        }
    }

    /// The user a request acts for: its token's `sub`. A valid token without a subject is
    /// refused too, since the chat routes need to know who is asking.
    public func authenticate(_ request: HTTPRequest, now: Date = Date()) async -> Result<String, Rejection> {
        switch await check(request, now: now) {
        case .success(let subject?) where !subject.isEmpty:
            .success(subject)
        case .success:
            .failure(Rejection(response: Self.unauthorized("the token has no subject (sub)")))
        case .failure(let rejection):
            .failure(rejection)
        }
    }

    /// A refused request: the 401 (or 503 while the provider's keys are not in hand) to send.
    public struct Rejection: Error, Sendable {
        public var response: HTTPResponse
    }

    /// The subject of a valid token (nil when the token has none), or the refusal.
    private func check(_ request: HTTPRequest, now: Date) async -> Result<String?, Rejection> {
        guard verifier.isConfigured else {
            return .failure(
                Rejection(
                    response: Self.unauthorized("user authentication is not configured (JWT_SECRET, JWT_JWKS_URL)")))
        }
        guard let token = bearerToken(request) else {
            return .failure(Rejection(response: Self.unauthorized("missing bearer token")))
        }
        // Outside its window a remembered token goes through the verifier, for the exact error.
        if let window = verified.window(of: token), window.contains(now.timeIntervalSince1970) {
            return .success(window.subject)
        }
        switch await verifier.verify(String(token), now: now) {
        case .success(let claims):
            verified.remember(token, window: .init(claims: claims, leewaySeconds: leewaySeconds))
            return .success(claims.subject)
        case .failure(.keysUnavailable):
            var response = HTTPResponse.error(
                status: 503, code: "auth_unavailable",
                message: "the identity provider's keys are not available yet; try again shortly")
            response.headers.append(("Retry-After", "5"))
            return .failure(Rejection(response: response))
        case .failure(let error):
            return .failure(Rejection(response: Self.unauthorized("invalid token: \(error)")))
        }
    }

    /// Tokens remembered right now; for tests.
    var rememberedTokens: Int { verified.count }

    private static func unauthorized(_ message: String) -> HTTPResponse {
        var response = HTTPResponse.error(status: 401, code: "unauthorized", message: message)
        response.headers.append(("WWW-Authenticate", #"Bearer realm="chat-service""#))
        return response
    }
}

/// Checks `Authorization: Bearer <ADMIN_TOKEN>` on operator routes (`/internal/*`).
public struct AdminAuthenticator: Sendable {
    private let adminToken: AdminToken?

    public init(token: String?) {
        adminToken = AdminToken(token)
    }

    /// nil when the request may pass; otherwise the 403 to send.
    public func reject(_ request: HTTPRequest) -> HTTPResponse? {
        guard let adminToken else {
            return .error(status: 403, code: "forbidden", message: "admin routes are disabled: ADMIN_TOKEN is not set")
        }
        guard let token = bearerToken(request), adminToken.matches(token) else {
            return .error(status: 403, code: "forbidden", message: "a valid admin bearer token is required")
        }
        return nil
    }
}

/// The token of the request's `Authorization: Bearer <token>` header (``BearerToken/parse(_:)``).
func bearerToken(_ request: HTTPRequest) -> Substring? {
    request.headers["authorization"].flatMap(BearerToken.parse)
}
