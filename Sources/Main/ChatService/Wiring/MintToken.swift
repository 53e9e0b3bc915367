import Actors
public import Foundation

/// A user JWT (HS256) for demos and tests: `sub`, `iat` and `exp` claims.
public func mintUserToken(subject: String, secret: String, validFor: Duration, now: Date = .now) -> String {
    JWTSigner.sign(
        JWTClaims(subject: subject, expiresAt: now.addingTimeInterval(validFor.timeInterval), issuedAt: now),
        secret: Array(secret.utf8))
}
