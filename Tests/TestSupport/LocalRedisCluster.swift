import ChatRuntime
import Foundation
public import Logging

/// A real Redis Cluster on loopback: three primaries and three replicas (`redis-server
/// --cluster-enabled yes`, joined by `redis-cli --cluster create ... --cluster-replicas 1`), each
/// node on free ports (client and cluster bus) with its own temporary directory, and a short
/// `cluster-node-timeout` so that failover tests finish quickly.
///
/// ``start(nodeTimeout:logger:)`` returns once every node reports `cluster_state:ok` and every
/// replica's link to its primary is up. Every wait is bounded; every process dies with the test
/// process, and ``cleanup()`` (also run by `deinit`) kills them and removes their directories.
public final class LocalRedisCluster: Sendable {
    /// Every node, in start order; roles change after a failover (see ``primaryPorts()``).
    public let nodes: [RedisServer]
    /// The `cluster-node-timeout` the nodes run with.
    public let nodeTimeout: Duration

    /// How long start waits for the cluster to form.
    public static let formTimeout: Duration = .seconds(60)

    public static func start(
        nodeTimeout: Duration = .milliseconds(2000), logger: Logger = Logger(label: "test.redis-cluster")
    ) async throws -> LocalRedisCluster {
        var nodes: [RedisServer] = []
        do {
            let milliseconds =
                nodeTimeout.components.seconds * 1000 + nodeTimeout.components.attoseconds / 1_000_000_000_000_000
            for _ in 0..<6 {
                nodes.append(
                    try await RedisServer.start(
                        extraConfig: [
                            "cluster-enabled yes",
                            "cluster-config-file nodes.conf",
                            "cluster-node-timeout \(milliseconds)",
                            // The bus port is client port + 10000 unless set: that may be taken.
                            "cluster-port \(freeLoopbackPort())",
                            "cluster-announce-ip 127.0.0.1",
                        ],
                        logger: logger))
            }
            let cluster = LocalRedisCluster(nodes: nodes, nodeTimeout: nodeTimeout)
            _ = try await nodes[0].cli(
                arguments: ["--cluster", "create"] + nodes.map { "127.0.0.1:\($0.port)" }
                    + ["--cluster-replicas", "1", "--cluster-yes"])
            try await cluster.waitUntilFormed()
            return cluster
        } catch {
            for node in nodes { node.cleanup() }
            throw error
        }
    }

    private init(nodes: [RedisServer], nodeTimeout: Duration) {
        self.nodes = nodes
        self.nodeTimeout = nodeTimeout
    }

    deinit {
        cleanup()
    }

    /// `127.0.0.1:p1,...` of every node, as REDIS_CLUSTER_NODES takes it.
    public var seedList: String {
        nodes.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
    }

    /// The ports of the nodes that are primaries now, by asking each node for its own role.
    public func primaryPorts() async -> [Int] {
        var ports: [Int] = []
        for node in nodes {
            if let role = try? await node.cli("ROLE"), role.hasPrefix("master") { ports.append(node.port) }
        }
        return ports
    }

    /// Kills every node and removes their directories. Idempotent.
    public func cleanup() {
        for node in nodes { node.cleanup() }
    }

    /// Every node says `cluster_state:ok` and knows six nodes, and every replica is in sync.
    private func waitUntilFormed() async throws {
        try await SentinelCluster.waitUntil("the cluster forms", timeout: Self.formTimeout) {
            for node in nodes {
                guard let info = try? await node.cli("CLUSTER", "INFO"),
                    info.contains("cluster_state:ok"), info.contains("cluster_known_nodes:6")
                else { return false }
                guard let replication = try? await node.cli("INFO", "replication") else { return false }
                if replication.contains("role:slave"), !replication.contains("master_link_status:up") { return false }
            }
            return true
        }
    }
}
