import ChatRuntime
import Logging
import TestSupport
import Testing

/// The slot table against a real six-node Redis Cluster: the foundation the cluster client
/// routes by.
@Suite("Redis Cluster topology", .timeLimit(.minutes(3)))
struct RedisClusterTopologyTests {
    let logger = Logger(label: "test.redis-cluster", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test func slotTableRoutesEveryKeyToTheNodeThatOwnsIt() async throws {
        let cluster = try await LocalRedisCluster.start(logger: logger)
        defer { cluster.cleanup() }
        try await withLoop { loop in
            let seed = try await RedisConnection.connect(
                to: RedisEndpoint(host: "127.0.0.1", port: cluster.nodes[0].port), on: loop, logger: logger)
            let shards = try ClusterTopology(
                clusterShardsReply: try await seed.send(RedisCommand("CLUSTER", ["SHARDS"])))
            let slots = try ClusterTopology(clusterSlotsReply: try await seed.send(RedisCommand("CLUSTER", ["SLOTS"])))
            let table = SlotTable(shards)
            #expect(table.uncoveredSlots == 0)
            #expect(SlotTable(slots) == table)
            #expect(Set(table.primaries.map(\.port)) == Set(await cluster.primaryPorts()))
            #expect(shards.shards.allSatisfy { $0.replicas.count == 1 })

            var connections: [RedisServerAddress: RedisConnection] = [:]
            for primary in table.primaries {
                connections[primary] = try await RedisConnection.connect(
                    to: RedisEndpoint(host: primary.host, port: primary.port), on: loop, logger: logger)
            }
            // Our CRC16 and hash tags agree with the server's, and the table names the owner:
            // each key is written on the node the table picks without a redirect.
            for index in 0..<300 {
                let key = index.isMultiple(of: 3) ? "participants:v1:{chat-\(index)}" : "key-\(index)-\(index * 7919)"
                let slot = HashSlot(key: key)
                let serverSlot = try await seed.send(RedisCommand("CLUSTER", ["KEYSLOT", key]))
                #expect(serverSlot.int == Int64(slot.value), "slot of \(key)")
                let owner = try #require(table.primary(for: slot))
                let reply = try await #require(connections[owner]).send(.set(key, value: Array("v".utf8)))
                #expect(reply == .simpleString("OK"))
            }

            // A node that does not own the key answers MOVED with the owner: the redirect parses
            // to what the table says.
            let key = "moved-check"
            let owner = try #require(table.primary(forKey: Array(key.utf8)))
            let other = try #require(table.primaries.first { $0 != owner })
            let error = await #expect(throws: RedisError.self) {
                try await #require(connections[other]).send(.get(key))
            }
            let redirect = ClusterRedirect(errorMessage: error?.message ?? "")
            #expect(redirect == .moved(slot: HashSlot(key: key), to: owner))

            for connection in connections.values { await connection.close() }
            await seed.close()
        }
    }
}
