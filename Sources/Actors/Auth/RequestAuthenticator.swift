import Crypto
import Foundation
import Runtime

/// Checks `Authorization: Bearer <JWT>` on user routes (`/v1/*`).
///
/// Runs on every user request, so tokens that verified are remembered with their validity
/// window (``VerifiedTokenCache``): a client that sends the same token again costs a lookup,
/// not an HMAC. Expiry is still checked on every request.
public struct UserAuthenticator: Sendable {
    /// Tokens remembered at most; a few kilobytes each, with their keys.
    public static let defaultTokenCacheCapacity = 4096

    private let verifier: JWTVerifier?
    private let verified: VerifiedTokenCache
    private let leewaySeconds: Double

    /// Without a secret every request is refused: user routes are never open by accident.
    /// - Parameter tokenCacheCapacity: verified tokens remembered; 0 verifies every request.
    public init(secret: String?, tokenCacheCapacity: Int = UserAuthenticator.defaultTokenCacheCapacity) {
        let verifier = secret.flatMap { $0.isEmpty ? nil : JWTVerifier(secret: Array($0.utf8)) }
        self.verifier = verifier
        verified = VerifiedTokenCache(capacity: tokenCacheCapacity)
        leewaySeconds = verifier?.leeway.timeInterval ?? 0
    }

    /// nil when the request may pass; otherwise the 401 to send.
    public func reject(_ request: HTTPRequest, now: Date = Date()) -> HTTPResponse? {
        switch check(request, now: now) {
        case .success: nil
        case .failure(let rejection): rejection.response
        }
    }

    /// The user a request acts for: its token's `sub`. A valid token without a subject is
    /// refused too, since the chat routes need to know who is asking.
    public func authenticate(_ request: HTTPRequest, now: Date = Date()) -> Result<String, Rejection> {
        switch check(request, now: now) {
        case .success(let subject?) where !subject.isEmpty:
            .success(subject)
        case .success:
            .failure(Rejection(response: Self.unauthorized("the token has no subject (sub)")))
        case .failure(let rejection):
            .failure(rejection)
        }
    }

    /// A refused request: the 401 to send.
    public struct Rejection: Error, Sendable {
        public var response: HTTPResponse
    }

    /// The subject of a valid token (nil when the token has none), or the 401.
    private func check(_ request: HTTPRequest, now: Date) -> Result<String?, Rejection> {
        guard let verifier else {
            return .failure(Rejection(response: Self.unauthorized("user authentication is not configured (JWT_SECRET)")))
        }
        guard let token = bearerToken(request) else {
            return .failure(Rejection(response: Self.unauthorized("missing bearer token")))
        }
        // Outside its window a remembered token goes through the verifier, for the exact error.
        if let window = verified.window(of: token), window.contains(now.timeIntervalSince1970) {
            return .success(window.subject)
        }
        switch verifier.verify(String(token), now: now) {
        case .success(let claims):
            verified.remember(token, window: .init(claims: claims, leewaySeconds: leewaySeconds))
            return .success(claims.subject)
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
    private let tokenDigest: [UInt8]?

    public init(token: String?) {
        tokenDigest = token.flatMap { $0.isEmpty ? nil : Array(SHA256.hash(data: Array($0.utf8))) }
    }

    /// nil when the request may pass; otherwise the 403 to send.
    public func reject(_ request: HTTPRequest) -> HTTPResponse? {
        guard let tokenDigest else {
            return .error(status: 403, code: "forbidden", message: "admin routes are disabled: ADMIN_TOKEN is not set")
        }
        // Comparing digests keeps the comparison's time independent of where the tokens differ.
        guard let token = bearerToken(request),
            constantTimeEqual(Array(SHA256.hash(data: Array(token.utf8))), tokenDigest)
        else {
            return .error(status: 403, code: "forbidden", message: "a valid admin bearer token is required")
        }
        return nil
    }
}

/// The token of `Authorization: Bearer <token>`: the scheme in any case, the token without the
/// spaces and tabs around it; nil without the header, for another scheme or an empty token.
/// Written on the UTF-8 bytes: it runs on every request.
func bearerToken(_ request: HTTPRequest) -> Substring? {
    guard let header = request.headers["authorization"] else { return nil }
    let utf8 = header.utf8
    guard let space = utf8.firstIndex(of: UInt8(ascii: " ")),
        utf8[..<space].elementsEqual("bearer".utf8, by: { $0 | 0x20 == $1 })
    else { return nil }
    let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
    var start = utf8.index(after: space)
    var end = utf8.endIndex
    while start < end, isBlank(utf8[start]) { start = utf8.index(after: start) }
    while end > start, isBlank(utf8[utf8.index(before: end)]) { end = utf8.index(before: end) }
    return start < end ? header[start..<end] : nil
}

private func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}
