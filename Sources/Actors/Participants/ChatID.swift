/// A validated chat identifier.
///
/// Identifiers end up inside Redis keys, URLs and log lines, so only a conservative alphabet is
/// accepted: 1...128 characters from `[A-Za-z0-9_.:-]`. Braces are excluded because they delimit
/// Redis Cluster hash tags, and `/`, spaces and control characters because they would break paths,
/// keys or logs.
public struct ChatID: Hashable, Sendable, CustomStringConvertible {
    /// The longest identifier accepted, in characters (all accepted characters are one byte).
    public static let maximumLength = 128

    /// The identifier as received; always valid.
    public let rawValue: String

    /// Accepts `text` only if it is a valid chat identifier.
    public init?(validating text: String) {
        let utf8 = text.utf8
        guard (1...Self.maximumLength).contains(utf8.count),
            utf8.allSatisfy(Self.isAllowed)
        else { return nil }
        rawValue = text
    }

    /// The Redis key of this chat's cached entry. The braces form a hash tag, so every key of one
    /// chat lands in the same cluster slot.
    public var redisKey: String { "participants:v1:{\(rawValue)}" }

    public var description: String { rawValue }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}

/// Encoded as a plain JSON string; decoding rejects strings that are not valid identifiers, so a
/// wire type holding a `ChatID` can never carry one that would be unsafe as a Redis key.
extension ChatID: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = ChatID(validating: text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "invalid chat id \(String(reflecting: String(text.prefix(64))))"
            )
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
