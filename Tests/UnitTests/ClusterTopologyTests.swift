import ChatRuntime
import Testing

@Suite("ClusterTopology and SlotTable")
struct ClusterTopologyTests {
    // MARK: Replies in the shapes Redis 7 documents (RESP2)

    private static func text(_ value: String) -> RESPValue { .bulkString(Array(value.utf8)) }

    private static func node(
        id: String, port: Int, role: String, health: String = "online", endpoint: String = "127.0.0.1"
    ) -> RESPValue {
        .array([
            text("id"), text(id), text("port"), .integer(Int64(port)), text("ip"), text("127.0.0.1"),
            text("endpoint"), text(endpoint), text("role"), text(role), text("replication-offset"), .integer(72156),
            text("health"), text(health),
        ])
    }

    private static func shard(_ slots: [Int], _ nodes: [RESPValue]) -> RESPValue {
        .array([text("slots"), .array(slots.map { .integer(Int64($0)) }), text("nodes"), .array(nodes)])
    }

    private static let threeShards: RESPValue = .array([
        shard([0, 5460], [node(id: "a", port: 7000, role: "master"), node(id: "d", port: 7003, role: "replica")]),
        shard([5461, 10922], [node(id: "e", port: 7004, role: "replica"), node(id: "b", port: 7001, role: "master")]),
        shard(
            [10923, 16000, 16001, 16383],
            [node(id: "c", port: 7002, role: "master"), node(id: "f", port: 7005, role: "replica", health: "loading")]),
    ])

    @Test func clusterShardsGivesEachPrimaryItsSlotsAndReplicas() throws {
        let topology = try ClusterTopology(clusterShardsReply: Self.threeShards)
        #expect(topology.shards.count == 3)
        #expect(topology.shards[1].primary == .init(id: "b", address: .init(host: "127.0.0.1", port: 7001)))
        #expect(topology.shards[1].replicas.map(\.address.port) == [7004])
        #expect(topology.shards[2].slots == [10923...16000, 16001...16383])
        #expect(topology.shards[2].replicas.first?.isHealthy == false)

        let table = SlotTable(topology)
        #expect(table.uncoveredSlots == 0)
        #expect(table.primaries.map(\.port) == [7000, 7001, 7002])
        #expect(table.primary(for: HashSlot(0)!)?.port == 7000)
        #expect(table.primary(for: HashSlot(5461)!)?.port == 7001)
        #expect(table.primary(for: HashSlot(16383)!)?.port == 7002)
        #expect(table.slots(of: .init(host: "127.0.0.1", port: 7002)) == [10923...16383])
        #expect(table.primary(forKey: Array("foo".utf8))?.port == 7002) // slot 12182
    }

    @Test func clusterSlotsAgreesWithClusterShards() throws {
        func slotsNode(_ port: Int, _ id: String) -> RESPValue {
            .array([Self.text("127.0.0.1"), .integer(Int64(port)), Self.text(id), .array([])])
        }
        let reply: RESPValue = .array([
            .array([.integer(0), .integer(5460), slotsNode(7000, "a"), slotsNode(7003, "d")]),
            .array([.integer(5461), .integer(10922), slotsNode(7001, "b"), slotsNode(7004, "e")]),
            .array([.integer(10923), .integer(16000), slotsNode(7002, "c"), slotsNode(7005, "f")]),
            .array([.integer(16001), .integer(16383), slotsNode(7002, "c"), slotsNode(7005, "f")]),
        ])
        let fromSlots = try ClusterTopology(clusterSlotsReply: reply)
        #expect(fromSlots.shards.count == 3)
        #expect(fromSlots.shards[2].slots == [10923...16000, 16001...16383])
        #expect(SlotTable(fromSlots) == SlotTable(try ClusterTopology(clusterShardsReply: Self.threeShards)))
    }

    @Test func aShardWithoutPrimaryOrSlotsRoutesNothing() throws {
        let reply: RESPValue = .array([
            Self.shard([0, 8191], [Self.node(id: "a", port: 7000, role: "master")]),
            // The primary failed and no replica was promoted yet.
            Self.shard([8192, 16383], [Self.node(id: "d", port: 7003, role: "replica")]),
            // A new, empty primary.
            Self.shard([], [Self.node(id: "g", port: 7006, role: "master")]),
        ])
        let table = SlotTable(try ClusterTopology(clusterShardsReply: reply))
        #expect(table.uncoveredSlots == 8192)
        #expect(table.primary(for: HashSlot(8192)!) == nil)
        #expect(table.primaries.map(\.port) == [7000])
    }

    @Test func anUnknownEndpointFallsBackToTheIP() throws {
        let reply: RESPValue = .array([
            Self.shard([0, 16383], [Self.node(id: "a", port: 7000, role: "master", endpoint: "?")])
        ])
        let topology = try ClusterTopology(clusterShardsReply: reply)
        #expect(topology.shards.first?.primary.address == .init(host: "127.0.0.1", port: 7000))
    }

    @Test(arguments: [
        RESPValue.simpleString("OK"),
        .array([.array([Self.text("slots")])]),
        .array([Self.shard([0], [Self.node(id: "a", port: 7000, role: "master")])]),
        .array([Self.shard([5, 1], [Self.node(id: "a", port: 7000, role: "master")])]),
        .array([Self.shard([0, 16384], [Self.node(id: "a", port: 7000, role: "master")])]),
        .array([.array([Self.text("slots"), .array([.integer(0), .integer(1)])])]),
    ])
    func malformedClusterShardsRepliesAreErrors(reply: RESPValue) {
        #expect(throws: ClusterTopologyError.self) { try ClusterTopology(clusterShardsReply: reply) }
    }

    @Test func aMovedRedirectUpdatesOneSlot() throws {
        var table = SlotTable(try ClusterTopology(clusterShardsReply: Self.threeShards))
        let slot = HashSlot(100)!
        let newNode = RedisServerAddress(host: "127.0.0.1", port: 7009)
        table.move(slot, to: newNode)
        #expect(table.primary(for: slot) == newNode)
        #expect(table.primary(for: HashSlot(101)!)?.port == 7000)
        #expect(table.slots(of: newNode) == [100...100])
        #expect(table.slots(of: .init(host: "127.0.0.1", port: 7000)) == [0...99, 101...5460])
        #expect(SlotTable().uncoveredSlots == HashSlot.count)
    }
}
