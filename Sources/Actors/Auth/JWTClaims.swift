public import Foundation

/// The registered claims of a user token that chat-service looks at.
public struct JWTClaims: Sendable, Hashable {
    /// The user (`sub`).
    public var subject: String?
    /// The end of validity (`exp`).
    public var expiresAt: Date?
    /// The start of validity (`nbf`).
    public var notBefore: Date?
    /// When the token was minted (`iat`); informational, not checked.
    public var issuedAt: Date?

    public init(subject: String? = nil, expiresAt: Date? = nil, notBefore: Date? = nil, issuedAt: Date? = nil) {
        self.subject = subject
        self.expiresAt = expiresAt
        self.notBefore = notBefore
        self.issuedAt = issuedAt
    }

    /// The payload JSON, with dates as whole seconds since 1970 (NumericDate), rounded down.
    /// Absent claims are omitted.
    var payloadJSON: [UInt8] {
        var writer = JSONWriter(reservingCapacity: 96)
        var isFirst = true
        func key(_ name: StaticString) {
            writer.appendRaw(ascii: isFirst ? UInt8(ascii: "{") : UInt8(ascii: ","))
            writer.appendRaw(name)
            isFirst = false
        }
        if let subject {
            key(#""sub":"#)
            writer.appendString(subject)
        }
        if let expiresAt {
            key(#""exp":"#)
            writer.appendInteger(Self.numericDate(expiresAt))
        }
        if let notBefore {
            key(#""nbf":"#)
            writer.appendInteger(Self.numericDate(notBefore))
        }
        if let issuedAt {
            key(#""iat":"#)
            writer.appendInteger(Self.numericDate(issuedAt))
        }
        if isFirst {
            writer.appendRaw("{")
        }
        writer.appendRaw("}")
        return writer.bytes
    }

    private static func numericDate(_ date: Date) -> Int64 {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        guard !seconds.isNaN else { return 0 }
        // Far beyond any real date, and exactly representable both as Double and Int64.
        let limit = 9e15
        return Int64(max(-limit, min(limit, seconds)))
    }
}
