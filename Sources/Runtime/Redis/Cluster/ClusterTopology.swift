/// Which node serves which hash slots: a Redis Cluster's shards as one node reported them.
///
/// Parsed from `CLUSTER SHARDS` (Redis 7 and later) or `CLUSTER SLOTS` (older servers and
/// some managed offerings). A pure value: the client builds a ``SlotTable`` from it and asks for
/// a new one on `MOVED`, after a node's connection drops, and periodically.
public struct ClusterTopology: Sendable, Hashable {
    /// One primary, the slot ranges it serves, and its replicas.
    public struct Shard: Sendable, Hashable {
        public var slots: [ClosedRange<Int>]
        public var primary: Node
        public var replicas: [Node]

        public init(slots: [ClosedRange<Int>], primary: Node, replicas: [Node] = []) {
            self.slots = slots
            self.primary = primary
            self.replicas = replicas
        }
    }

    /// A cluster node as the topology names it.
    public struct Node: Sendable, Hashable, CustomStringConvertible {
        /// The node's 40-character cluster id; empty when the reply did not carry one.
        public var id: String
        public var address: RedisServerAddress
        /// False when the node reported itself failed or loading (CLUSTER SHARDS' `health`).
        public var isHealthy: Bool

        public init(id: String, address: RedisServerAddress, isHealthy: Bool = true) {
            self.id = id
            self.address = address
            self.isHealthy = isHealthy
        }

        public var description: String { id.isEmpty ? "\(address)" : "\(address) (\(id.prefix(8)))" }
    }

    public var shards: [Shard]

    public init(shards: [Shard]) {
        self.shards = shards
    }

    /// The shards of a `CLUSTER SHARDS` reply (RESP2: every map is a flat array of key, value).
    /// Shards without a primary that serves slots (an empty shard, a failed primary whose
    /// replica has not been promoted yet) are left out: no slot can be routed to them.
    public init(clusterShardsReply reply: RESPValue) throws(ClusterTopologyError) {
        guard let entries = reply.array else {
            throw ClusterTopologyError("CLUSTER SHARDS: expected an array of shards")
        }
        var shards: [Shard] = []
        for entry in entries {
            let fields = try Self.map(entry, what: "a shard")
            guard let bounds = fields["slots"]?.array else {
                throw ClusterTopologyError("CLUSTER SHARDS: a shard has no slots")
            }
            guard bounds.count.isMultiple(of: 2) else {
                throw ClusterTopologyError("CLUSTER SHARDS: a shard's slots are not start/end pairs")
            }
            var ranges: [ClosedRange<Int>] = []
            for index in stride(from: 0, to: bounds.count, by: 2) {
                ranges.append(try Self.slotRange(start: bounds[index], end: bounds[index + 1]))
            }
            guard let nodeEntries = fields["nodes"]?.array else {
                throw ClusterTopologyError("CLUSTER SHARDS: a shard has no nodes")
            }
            var primary: Node?
            var replicas: [Node] = []
            for nodeEntry in nodeEntries {
                let node = try Self.map(nodeEntry, what: "a node")
                guard let port = node["port"]?.int.map(Int.init) ?? node["tls-port"]?.int.map(Int.init) else {
                    throw ClusterTopologyError("CLUSTER SHARDS: a node has no port")
                }
                // `endpoint` is what clients should use (cluster-preferred-endpoint-type); `ip` is
                // the fallback. "?" means the node does not know its endpoint yet.
                guard
                    let host = [node["endpoint"]?.string, node["ip"]?.string].compactMap({ $0 }).first(where: {
                        !$0.isEmpty && $0 != "?"
                    })
                else {
                    continue
                }
                let parsed = Node(
                    id: node["id"]?.string ?? "",
                    address: RedisServerAddress(host: host, port: port),
                    isHealthy: (node["health"]?.string ?? "online") == "online"
                )
                if node["role"]?.string == "master" {
                    primary = parsed
                } else {
                    replicas.append(parsed)
                }
            }
            guard let primary, !ranges.isEmpty else { continue }
            shards.append(Shard(slots: ranges, primary: primary, replicas: replicas))
        }
        self.init(shards: shards)
    }

    /// The shards of a `CLUSTER SLOTS` reply: one entry per slot range, `[start, end, primary,
    /// replica...]`, each node `[host, port, id, ...]`. Ranges served by the same primary are
    /// gathered into one shard.
    public init(clusterSlotsReply reply: RESPValue) throws(ClusterTopologyError) {
        guard let entries = reply.array else {
            throw ClusterTopologyError("CLUSTER SLOTS: expected an array of ranges")
        }
        var shards: [Shard] = []
        var shardOfPrimary: [RedisServerAddress: Int] = [:]
        for entry in entries {
            guard let parts = entry.array, parts.count >= 3 else {
                throw ClusterTopologyError("CLUSTER SLOTS: a range is not [start, end, primary, ...]")
            }
            let range = try Self.slotRange(start: parts[0], end: parts[1])
            let primary = try Self.slotsNode(parts[2])
            let replicas = try parts.dropFirst(3).map { (part) throws(ClusterTopologyError) in try Self.slotsNode(part)
            }
            if let index = shardOfPrimary[primary.address] {
                shards[index].slots.append(range)
            } else {
                shardOfPrimary[primary.address] = shards.count
                shards.append(Shard(slots: [range], primary: primary, replicas: replicas))
            }
        }
        self.init(shards: shards)
    }

    private static func slotsNode(_ value: RESPValue) throws(ClusterTopologyError) -> Node {
        guard let fields = value.array, fields.count >= 2, let host = fields[0].string,
            let port = fields[1].int, (1...65535).contains(port)
        else { throw ClusterTopologyError("CLUSTER SLOTS: a node is not [host, port, ...]") }
        return Node(
            id: fields.count > 2 ? fields[2].string ?? "" : "", address: RedisServerAddress(host: host, port: Int(port))
        )
    }

    private static func slotRange(start: RESPValue, end: RESPValue) throws(ClusterTopologyError) -> ClosedRange<Int> {
        guard let first = start.int.map(Int.init), let last = end.int.map(Int.init),
            HashSlot(first) != nil, HashSlot(last) != nil, first <= last
        else { throw ClusterTopologyError("a slot range is not two slot numbers, start <= end < 16384") }
        return first...last
    }

    /// A RESP2 map: an array of alternating keys and values.
    private static func map(_ value: RESPValue, what: String) throws(ClusterTopologyError) -> [String: RESPValue] {
        guard let items = value.array, items.count.isMultiple(of: 2) else {
            throw ClusterTopologyError("CLUSTER SHARDS: \(what) is not a list of field, value")
        }
        var fields: [String: RESPValue] = [:]
        for index in stride(from: 0, to: items.count, by: 2) {
            guard let key = items[index].string else {
                throw ClusterTopologyError("CLUSTER SHARDS: \(what) has a field name that is not text")
            }
            fields[key] = items[index + 1]
        }
        return fields
    }
}

/// A topology reply that does not have the shape Redis documents.
public struct ClusterTopologyError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
