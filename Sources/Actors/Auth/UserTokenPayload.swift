import Foundation
import JWTKit

/// The claims of a user token that chat-service reads, as jwt-kit decodes them.
///
/// ``verify(using:)`` checks nothing: ``TokenVerifier`` checks the time claims with its leeway
/// and the issuer and audience it is configured with, against a clock tests can set.
struct UserTokenPayload: JWTPayload {
    var sub: SubjectClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?

    func verify(using algorithm: some JWTAlgorithm) async throws {}

    var claims: JWTClaims {
        JWTClaims(subject: sub?.value, expiresAt: exp?.value, notBefore: nbf?.value, issuedAt: iat?.value)
    }
}
