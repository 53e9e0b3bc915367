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

    /// `SET key value [EX seconds]`.
    public static func set(_ key: String, value: [UInt8], expireSeconds: Int? = nil) -> RedisCommand {
        var arguments: [[UInt8]] = [Array(key.utf8), value]
        if let expireSeconds {
            arguments.append(Array("EX".utf8))
            arguments.append(Array(String(expireSeconds).utf8))
        }
        return RedisCommand("SET", arguments: arguments)
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

extension RedisCommand {
    /// Commands that change the reply stream from one reply per command, which the FIFO of
    /// pending replies in ``RedisConnection`` relies on. hiredis also treats them specially.
    var breaksReplyOrder: Bool {
        switch name.uppercased() {
        case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR":
            true
        default:
            false
        }
    }

    /// Calls `body` with a C argv and argvlen valid only for the duration of the call, which is
    /// all hiredis needs: it copies the arguments into its output buffer.
    func withArgv<Result>(
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> Result
    ) -> Result {
        var flat: [UInt8] = []
        flat.reserveCapacity(arguments.reduce(0) { $0 + $1.count } + 1)
        for argument in arguments { flat.append(contentsOf: argument) }
        // One spare byte keeps the base address valid even when every argument is empty.
        flat.append(0)
        let lengths = arguments.map(\.count)
        return flat.withUnsafeBufferPointer { flatBuffer in
            let base = UnsafeRawPointer(flatBuffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(arguments.count)
            var offset = 0
            for length in lengths {
                pointers.append(base + offset)
                offset += length
            }
            return pointers.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { argvlen in
                    body(Int32(arguments.count), argv.baseAddress!, argvlen.baseAddress!)
                }
            }
        }
    }
}
