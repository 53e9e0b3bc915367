import Crypto

/// Bearer credentials (RFC 6750) as an HTTP `Authorization` header and gRPC's `authorization`
/// metadata carry them: one parser for both front ends, so they accept the same tokens.
public enum BearerToken {
    /// The token of `Bearer <token>`: the scheme in any case, then one or more spaces (RFC 7235's
    /// `1*SP`), the token without the spaces and tabs around it; blanks before the scheme are
    /// ignored. nil for another scheme or an empty token. Written on the UTF-8 bytes: it runs on
    /// every request.
    public static func parse(_ value: String) -> Substring? {
        let utf8 = value.utf8
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let schemeStart = utf8.firstIndex(where: { !isBlank($0) }),
            let space = utf8[schemeStart...].firstIndex(of: UInt8(ascii: " ")),
            utf8[schemeStart..<space].elementsEqual("bearer".utf8, by: { $0 | 0x20 == $1 })
        else { return nil }
        var start = utf8.index(after: space)
        var end = utf8.endIndex
        while start < end, isBlank(utf8[start]) { start = utf8.index(after: start) }
        while end > start, isBlank(utf8[utf8.index(before: end)]) { end = utf8.index(before: end) }
        return start < end ? value[start..<end] : nil
    }
}

/// The operator token (`ADMIN_TOKEN`), kept as its SHA-256 digest: comparing digests keeps the
/// comparison's time independent of where a candidate differs from it.
public struct AdminToken: Sendable {
    private let digest: [UInt8]

    /// nil when the token is unset or empty: operator calls are then refused, never open.
    public init?(_ token: String?) {
        guard let token, !token.isEmpty else { return nil }
        digest = Array(SHA256.hash(data: Array(token.utf8)))
    }

    /// Whether `candidate` is the operator token.
    public func matches(_ candidate: Substring) -> Bool {
        let candidateDigest = Array(SHA256.hash(data: Array(candidate.utf8)))
        var difference: UInt8 = 0
        for index in digest.indices { difference |= digest[index] ^ candidateDigest[index] }
        return difference == 0
    }
}
