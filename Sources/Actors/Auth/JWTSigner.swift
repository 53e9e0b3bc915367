import Crypto

/// Mints HS256 tokens: for tests, and for the CLI's token command.
public enum JWTSigner {
    /// The base64url of `{"alg":"HS256","typ":"JWT"}`, the only header this service writes; the
    /// verifier recognizes it without parsing JSON.
    static let encodedHeader: [UInt8] = Array(Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)).utf8)

    /// A token carrying `claims`, signed with `secret`. Dates are written as whole seconds.
    public static func sign(_ claims: JWTClaims, secret: [UInt8]) -> String {
        sign(payloadJSON: claims.payloadJSON, secret: secret)
    }

    /// A token carrying `payloadJSON` verbatim, signed with `secret`; for custom claims. The bytes
    /// are not checked to be JSON.
    public static func sign(payloadJSON: [UInt8], secret: [UInt8]) -> String {
        var signingInput = encodedHeader
        signingInput.append(UInt8(ascii: "."))
        signingInput.append(contentsOf: Base64URL.encode(payloadJSON).utf8)
        let signature = HMAC<SHA256>.authenticationCode(for: signingInput, using: SymmetricKey(data: secret))
        return String(decoding: signingInput, as: UTF8.self) + "." + Base64URL.encode(Array(signature))
    }
}
