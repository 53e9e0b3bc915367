/// One Redis command as binary-safe arguments.
///
/// `arguments` is the whole argv: the command name first, then its arguments. Nothing is
/// quoted or split, so keys and values may hold any bytes, `\0` and `\r\n` included.
public struct RedisCommand: Sendable, Hashable {
    /// The argv sent to Redis: the command name followed by its arguments.
    public var arguments: [[UInt8]]

    /// A command with text arguments, each sent as its UTF-8 bytes.
    public init(_ name: String, _ arguments: [String]) {
        self.arguments = [Array(name.utf8)] + arguments.map { Array($0.utf8) }
    }

    /// A command with binary arguments.
    public init(_ name: String, arguments: [[UInt8]]) {
        self.arguments = [Array(name.utf8)] + arguments
    }

    /// A command from its whole argv, name included: one array, no concatenation.
    init(argv: [[UInt8]]) {
        self.arguments = argv
    }

    /// The command name as text, as given (Redis itself ignores its case).
    public var name: String {
        String(decoding: arguments.first ?? [], as: UTF8.self)
    }
}

extension RedisCommand {
    public static let ping = RedisCommand("PING", [])

    public static func get(_ key: String) -> RedisCommand {
        RedisCommand("GET", [key])
    }

    /// `SET key value [EX seconds]`. Runs once per entry a sync writes: the value is shared,
    /// not copied, and the constant words come from shared buffers.
    public static func set(_ key: String, value: [UInt8], expireSeconds: Int? = nil) -> RedisCommand {
        guard let expireSeconds else {
            return RedisCommand(argv: [Words.set, Array(key.utf8), value])
        }
        return RedisCommand(argv: [Words.set, Array(key.utf8), value, Words.ex, Array(String(expireSeconds).utf8)])
    }

    public static func del(_ keys: String...) -> RedisCommand {
        del(keys)
    }

    public static func del(_ keys: [String]) -> RedisCommand {
        RedisCommand("DEL", keys)
    }

    public static func incr(_ key: String) -> RedisCommand {
        RedisCommand("INCR", [key])
    }

    /// `AUTH password`, or `AUTH username password` for an ACL user.
    public static func auth(username: String?, password: String) -> RedisCommand {
        if let username {
            return RedisCommand("AUTH", [username, password])
        }
        return RedisCommand("AUTH", [password])
    }

    public static func select(_ database: Int) -> RedisCommand {
        RedisCommand("SELECT", [String(database)])
    }
}

extension RedisCommand: CustomStringConvertible {
    /// The command name and argument count only: arguments may hold secrets (AUTH) or large values.
    public var description: String {
        "\(name.uppercased()) (\(arguments.count - 1) arguments)"
    }
}

/// Command words that hot paths share instead of making a new array per command.
private enum Words {
    static let set = Array("SET".utf8)
    static let ex = Array("EX".utf8)
}

extension RedisCommand {
    /// Commands that change the reply stream from one reply per command, which the FIFO of
    /// pending replies in ``RedisConnection`` relies on. hiredis also treats them specially.
    /// Checked for every command sent, so it looks at the name's bytes and makes no string.
    var breaksReplyOrder: Bool {
        // Every such name is 7 (MONITOR) to 12 (PUNSUBSCRIBE) bytes long.
        guard let name = arguments.first, (7...12).contains(name.count) else { return false }
        return Self.replyOrderBreakers.contains(name.map(asciiUppercased))
    }

    private static let replyOrderBreakers: Set<[UInt8]> = Set(
        ["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR"]
            .map { Array($0.utf8) })

    /// The number of bytes ``appendWireFormat(to:)`` appends.
    var wireFormatCount: Int {
        var count = 3 + decimalDigitCount(arguments.count)
        for argument in arguments {
            count += 5 + decimalDigitCount(argument.count) + argument.count
        }
        return count
    }

    /// Appends the command as RESP, an array of bulk strings: byte for byte what hiredis'
    /// `redisFormatCommandArgv` writes. Each argument is copied once, straight from its own
    /// buffer, so a large value costs one copy here (and hiredis' copy into its output buffer).
    func appendWireFormat(to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "*"))
        appendDecimal(arguments.count, to: &buffer)
        buffer.append(UInt8(ascii: "\r"))
        buffer.append(UInt8(ascii: "\n"))
        for argument in arguments {
            buffer.append(UInt8(ascii: "$"))
            appendDecimal(argument.count, to: &buffer)
            buffer.append(UInt8(ascii: "\r"))
            buffer.append(UInt8(ascii: "\n"))
            buffer.append(contentsOf: argument)
            buffer.append(UInt8(ascii: "\r"))
            buffer.append(UInt8(ascii: "\n"))
        }
    }
}

private func asciiUppercased(_ byte: UInt8) -> UInt8 {
    byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") ? byte - 32 : byte
}

private func decimalDigitCount(_ value: Int) -> Int {
    var count = 1
    var rest = value
    while rest >= 10 {
        rest /= 10
        count += 1
    }
    return count
}

/// Appends a non-negative integer in decimal, without making a string.
private func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
    var divisor = 1
    while divisor <= value / 10 { divisor *= 10 }
    var rest = value
    while divisor > 0 {
        buffer.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest / divisor))
        rest %= divisor
        divisor /= 10
    }
}
