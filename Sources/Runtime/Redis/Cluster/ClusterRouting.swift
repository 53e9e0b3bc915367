/// Where a command goes in a Redis Cluster: the key that decides its slot.
///
/// Redis publishes each command's key positions (`COMMAND INFO`); a client that knows the
/// commands it sends can keep the rule as a small table instead, as this one does. The rule
/// covers every command the service sends; any other command with a key in the first
/// argument routes by that argument, which is the most common position.
extension RedisCommand {
    /// The key that decides this command's hash slot, or nil when the command touches no key
    /// (`PING`, `ROLE`, `CLUSTER ...`, a script with no keys): any primary can answer those.
    ///
    /// Multi-key commands and scripts route by their first key; the service gives all keys of
    /// one command the same hash tag, so they share the slot (Redis refuses them otherwise with
    /// `CROSSSLOT`, which reaches the caller as an error reply).
    public var routingKey: ArraySlice<UInt8>? {
        guard arguments.count >= 2 else { return nil }
        switch Self.routingRule(of: arguments[0]) {
        case .keyless:
            return nil
        case .firstArgument:
            return arguments[1][...]
        case .secondArgument:
            return arguments.count >= 3 ? arguments[2][...] : nil
        case .scriptKeys:
            // EVAL script numkeys key [key ...] arg [arg ...]
            guard arguments.count >= 4, let count = Int(String(decoding: arguments[2], as: UTF8.self)), count > 0
            else { return nil }
            return arguments[3][...]
        case .afterStreamsWord:
            guard let streams = arguments.firstIndex(where: { Self.equalsIgnoringCase($0, "STREAMS") }),
                streams + 1 < arguments.count
            else { return nil }
            return arguments[streams + 1][...]
        }
    }

    /// The hash slot of ``routingKey``; nil for commands without a key.
    public var hashSlot: HashSlot? {
        routingKey.map { HashSlot(key: $0) }
    }

    private enum RoutingRule {
        case keyless, firstArgument, secondArgument, scriptKeys, afterStreamsWord
    }

    private static func routingRule(of name: [UInt8]) -> RoutingRule {
        // The commands of the batch write and the read path, as RedisCommand spells them, without
        // building a String and comparing it with every case below.
        if name == set || name == get { return .firstArgument }
        // Upper-cased once; command names are short ASCII words.
        let upper = String(decoding: name, as: UTF8.self).uppercased()
        switch upper {
        case "PING", "ROLE", "INFO", "CLUSTER", "AUTH", "SELECT", "HELLO", "CLIENT", "ASKING", "READONLY",
            "READWRITE", "SCRIPT", "TIME", "COMMAND", "CONFIG", "DBSIZE", "FLUSHALL", "FLUSHDB", "SENTINEL":
            return .keyless
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            return .scriptKeys
        case "XREAD", "XREADGROUP":
            return .afterStreamsWord
        case "XGROUP", "XINFO", "OBJECT", "MEMORY":
            return .secondArgument
        default:
            return .firstArgument
        }
    }

    private static let set = Array("SET".utf8)
    private static let get = Array("GET".utf8)

    private static func equalsIgnoringCase(_ bytes: [UInt8], _ word: String) -> Bool {
        bytes.count == word.utf8.count
            && zip(bytes, word.utf8).allSatisfy { $0 == $1 || ($0 >= 97 && $0 <= 122 && $0 - 32 == $1) }
    }
}
