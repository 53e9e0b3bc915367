import Crypto
import Foundation
import Runtime

/// Checks `Authorization: Bearer <JWT>` on user routes (`/v1/*`).
public struct UserAuthenticator: Sendable {
    private let verifier: JWTVerifier?

    /// Without a secret every request is refused: user routes are never open by accident.
    public init(secret: String?) {
        verifier = secret.flatMap { $0.isEmpty ? nil : JWTVerifier(secret: Array($0.utf8)) }
    }

    /// nil when the request may pass; otherwise the 401 to send.
    public func reject(_ request: HTTPRequest, now: Date = Date()) -> HTTPResponse? {
        guard let verifier else {
            return Self.unauthorized("user authentication is not configured (JWT_SECRET)")
        }
        guard let token = bearerToken(request) else {
            return Self.unauthorized("missing bearer token")
        }
        switch verifier.verify(token, now: now) {
        case .success: return nil
        case .failure(let error): return Self.unauthorized("invalid token: \(error)")
        }
    }

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

private func bearerToken(_ request: HTTPRequest) -> String? {
    guard let header = request.headers["authorization"] else { return nil }
    let parts = header.split(separator: " ", maxSplits: 1)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
    let token = parts[1].trimmingCharacters(in: .whitespaces)
    return token.isEmpty ? nil : token
}

private func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}
