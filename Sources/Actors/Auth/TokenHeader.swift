/// The JOSE header fields that decide which key checks a token: `alg` and `kid`. Read before
/// any key is touched, so a token is routed to the shared secret or the provider's keys by what
/// it claims, and each key then verifies only with its own algorithm.
struct TokenHeader: Sendable, Hashable {
    var algorithm: String
    var keyID: String?

    /// The header of `token` (its first segment). A header naming critical extensions (`crit`)
    /// is refused: none are understood, and RFC 7515 §4.1.11 requires refusing what is not.
    static func parse(_ token: String) -> Result<TokenHeader, TokenError> {
        let utf8 = Array(token.utf8)
        let dot = UInt8(ascii: ".")
        guard let firstDot = utf8.firstIndex(of: dot),
            let secondDot = utf8[(firstDot + 1)...].firstIndex(of: dot),
            !utf8[(secondDot + 1)...].contains(dot)
        else { return .failure(.malformed) }
        guard let json = Base64URL.decode(utf8[..<firstDot]) else { return .failure(.malformed) }
        var scanner = JSONScanner(json)
        var algorithm: String?
        var keyID: String?
        do {
            guard try scanner.peekKind() == .object else { return .failure(.invalidHeader) }
            try scanner.beginObject()
            var isFirst = true
            while let key = try scanner.nextKey(isFirst: &isFirst) {
                if JSONScanner.bytes(key, equal: "alg") {
                    guard try scanner.peekKind() == .string else { return .failure(.invalidHeader) }
                    algorithm = try scanner.readString()
                } else if JSONScanner.bytes(key, equal: "kid") {
                    guard try scanner.peekKind() == .string else { return .failure(.invalidHeader) }
                    keyID = try scanner.readString()
                } else if JSONScanner.bytes(key, equal: "crit") {
                    return .failure(.invalidHeader)
                } else {
                    try scanner.skipValue()
                }
            }
            try scanner.expectEnd()
        } catch {
            return .failure(.invalidHeader)
        }
        guard let algorithm else { return .failure(.invalidHeader) }
        return .success(TokenHeader(algorithm: algorithm, keyID: keyID))
    }
}
