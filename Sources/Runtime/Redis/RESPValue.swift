public import CHiredis

/// One Redis reply (RESP2), copied out of hiredis so it outlives the C reply object.
public enum RESPValue: Sendable, Hashable {
    /// A status reply such as `+OK`.
    case simpleString(String)
    /// An error reply such as `-ERR wrong number of arguments`, without the leading `-`.
    case error(String)
    case integer(Int64)
    /// A bulk string, binary-safe.
    case bulkString([UInt8])
    /// A nil bulk string or nil array.
    case null
    case array([RESPValue])
}

extension RESPValue {
    /// The text of a simple or bulk string, decoded as UTF-8 (invalid bytes become U+FFFD);
    /// nil for other kinds.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The bytes of a bulk or simple string; nil for other kinds.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text): Array(text.utf8)
        default: nil
        }
    }

    /// The value of an integer reply, or of a string reply holding a decimal integer
    /// (Redis returns numbers stored with SET as bulk strings); nil otherwise.
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString, .simpleString: string.flatMap { Int64($0) }
        default: nil
        }
    }

    /// The elements of an array reply; nil for other kinds (including a nil array).
    public var array: [RESPValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether this is a nil reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The message of an error reply; nil for other kinds.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}

extension RESPValue {
    /// Copies a hiredis reply tree. Unknown reply types (none exist in hiredis 0.14, which
    /// speaks RESP2 only) become an error value rather than a crash.
    init(reply: UnsafePointer<redisReply>) {
        let reply = reply.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            self = .bulkString(Self.copyBytes(reply.str, count: reply.len))
        case REDIS_REPLY_STATUS:
            self = .simpleString(String(decoding: Self.copyBytes(reply.str, count: reply.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: Self.copyBytes(reply.str, count: reply.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(reply.integer))
        case REDIS_REPLY_NIL:
            self = .null
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                if let element = reply.element[index] {
                    elements.append(RESPValue(reply: element))
                } else {
                    elements.append(.null)
                }
            }
            self = .array(elements)
        default:
            self = .error("unsupported reply type \(reply.type)")
        }
    }

    private static func copyBytes(_ pointer: UnsafeMutablePointer<CChar>?, count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: count) {
            Array(UnsafeBufferPointer(start: $0, count: count))
        }
    }
}

extension RESPValue {
    /// ``init(reply:)`` for the micro benchmarks (Benchmarks/), which feed hiredis' reply reader
    /// directly.
    @_spi(Benchmarks) public static func copying(_ reply: UnsafePointer<redisReply>) -> RESPValue {
        RESPValue(reply: reply)
    }
}

extension RESPValue: CustomStringConvertible {
    /// A short, log-friendly rendering; bulk strings longer than 64 bytes are elided.
    public var description: String {
        switch self {
        case .simpleString(let text): return "+\(text)"
        case .error(let message): return "-\(message)"
        case .integer(let value): return ":\(value)"
        case .null: return "(nil)"
        case .bulkString(let bytes):
            let shown = bytes.prefix(64)
            let text = String(decoding: shown, as: UTF8.self).debugDescription
            return bytes.count > 64 ? "\(text)… (\(bytes.count) bytes)" : text
        case .array(let elements):
            return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
