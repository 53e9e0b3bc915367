/// What a Redis Cluster node's error reply asks the client to do instead, parsed from its text.
///
/// - `MOVED <slot> <host>:<port>`: the slot lives on another node for good; refresh the slot
///   table and send there.
/// - `ASK <slot> <host>:<port>`: the slot is being migrated and this key already moved; send
///   this one command to that node, preceded by `ASKING`, without touching the slot table.
/// - `TRYAGAIN`: a multi-key command met a slot mid-migration; retry after a short pause.
/// - `CLUSTERDOWN`: the cluster cannot serve the slot now (no primary covers it).
public enum ClusterRedirect: Sendable, Hashable {
    case moved(slot: HashSlot, to: RedisServerAddress)
    case ask(slot: HashSlot, to: RedisServerAddress)
    case tryAgain
    case clusterDown

    /// The redirect an error reply's message carries; nil for any other error.
    public init?(errorMessage message: String) {
        let words = message.split(separator: " ", omittingEmptySubsequences: true)
        guard let first = words.first else { return nil }
        switch first {
        case "MOVED", "ASK":
            guard words.count >= 3, let number = Int(words[1]), let slot = HashSlot(number),
                let address = Self.address(words[2])
            else { return nil }
            self = first == "MOVED" ? .moved(slot: slot, to: address) : .ask(slot: slot, to: address)
        case "TRYAGAIN":
            self = .tryAgain
        case "CLUSTERDOWN":
            self = .clusterDown
        default:
            return nil
        }
    }

    /// `host:port`, where host may be an IPv6 address (its last colon separates the port) or
    /// empty (Redis then means the node that answered; we cannot follow that, so nil).
    private static func address(_ text: Substring) -> RedisServerAddress? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        return RedisServerAddress(host: String(host), port: port)
    }
}
