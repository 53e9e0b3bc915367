public import ChatRuntime
public import Logging
import Metrics
public import ServiceLifecycle

/// The service's side of a Redis Cluster: one supervised, pipelined connection per primary
/// (each a node ``RedisSupervisor`` with its own states), the slot table that routes every
/// command to its primary, and the redirects that correct it. Carries out
/// ``ClusterStateMachine``.
///
/// The topology is read with `CLUSTER SHARDS` (`CLUSTER SLOTS` on servers without it) from a
/// connected primary or, before there is one, from the seed nodes; again on `MOVED`, when a
/// primary's connection drops, and every refresh interval. `ASK` is followed for the one
/// command, after `ASKING`; `TRYAGAIN` is retried after a short pause; redirects are bounded.
///
/// A command to a primary that is not connected fails at once with ``RedisNotReadyError``,
/// like every command to a single Redis that is down: only the keys of that shard degrade.
///
/// Runs on the event loop, like the node supervisors and their connections.
public actor RedisCluster: Service {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let loop: EventLoop
    private let seeds: [RedisServerAddress]
    /// Credentials for every node; host, port and database are replaced.
    private let credentials: RedisEndpoint
    private let connectionOptions: RedisConnectionOptions
    private let logger: Logger
    private var machine: ClusterStateMachine
    private var random: any RandomNumberGenerator & Sendable
    private var nodes: [RedisServerAddress: RedisSupervisor] = [:]
    private var watchers: [RedisServerAddress: Task<Void, Never>] = [:]
    private var refreshTimer: LoopTimer?
    private var subscribers = StateSubscribers()
    private let metrics = ClusterMetrics()

    /// Redirects followed for one command before giving up: a slot moved twice while a command
    /// was in flight is already rare.
    static let maxRedirects = 5
    /// The pause before a command refused with `TRYAGAIN` (a multi-key command met a slot
    /// mid-migration) is sent again.
    static let tryAgainPause = Duration.milliseconds(20)

    public init(
        seeds: [RedisServerAddress],
        credentials: RedisEndpoint,
        loop: EventLoop,
        policy: ClusterStateMachine.Policy,
        connectionOptions: RedisConnectionOptions,
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        logger: Logger
    ) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.loop = loop
        self.seeds = seeds
        var credentials = credentials
        credentials.database = 0
        self.credentials = credentials
        self.connectionOptions = connectionOptions
        self.machine = ClusterStateMachine(policy: policy, now: .now)
        self.random = random
        var logger = logger
        logger[metadataKey: "redis.cluster_seeds"] = "\(seeds.map(\.description).joined(separator: ","))"
        self.logger = logger
    }

    // MARK: Service

    /// Reads the topology and connects to every primary, supervises until graceful shutdown,
    /// then closes every connection.
    public func run() async throws {
        metrics.recordState(machine.state)
        handle(.start)
        try? await gracefulShutdown()
        handle(.shutdown)
    }

    // MARK: State

    /// The derived state: `ready` when every slot's primary is connected.
    public var state: RedisState { machine.state }

    /// When the derived state's name last changed.
    public var since: ContinuousClock.Instant { machine.since }

    /// Each primary that serves slots, with its state and slot ranges, in slot order.
    public var nodeStatus: [RedisNodeStatus] {
        machine.table.servingPrimaries.map { address in
            RedisNodeStatus(
                address: address, state: machine.nodes[address] ?? .connecting, slots: machine.table.slots(of: address))
        }.sorted { ($0.slots.first?.lowerBound ?? 0) < ($1.slots.first?.lowerBound ?? 0) }
    }

    /// The node supervisors of the connected primaries, for per-node health checks.
    var readyNodes: [RedisSupervisor] {
        machine.table.servingPrimaries.compactMap { machine.nodes[$0] == .ready ? nodes[$0] : nil }
    }

    /// The primary serving `key`, when it is connected: for connections of their own that must
    /// go where the key lives (a blocking stream read).
    func connectedEndpoint(forKey key: String) -> RedisEndpoint? {
        guard let address = machine.table.primary(forKey: key.utf8), machine.nodes[address] == .ready else {
            return nil
        }
        return endpoint(of: address)
    }

    func stateChanges() -> AsyncStream<RedisStateChange> {
        subscribers.add(
            startingWith: RedisStateChange(from: machine.state, to: machine.state, since: machine.since),
            stopped: machine.state == .stopped
        ) { [weak self] id in
            Task { await self?.unsubscribe(id) }
        }
    }

    private func unsubscribe(_ id: Int) {
        subscribers.remove(id)
    }

    // MARK: Commands

    /// Sends `command` to the primary of its key's slot (any connected primary for a command
    /// without a key), following redirects. Throws like ``RedisSupervisor/send(_:)``.
    func send(_ command: RedisCommand) async throws -> RESPValue {
        let reply = try await sendFollowingRedirects(command, to: target(of: command))
        if case .error(let message) = reply { throw RedisError(code: .server, message: message) }
        return reply
    }

    /// Sends `commands` as one pipeline per primary, all at once, and returns the replies in
    /// the order of `commands`. Commands for one primary keep their order; there is no order
    /// between primaries. A primary that is not connected, or whose pipeline failed, gives
    /// error replies (``notSent(_:)``) for its commands; only when every primary failed does
    /// this throw.
    func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        var groups: [RedisServerAddress: [Int]] = [:]
        var unrouted: [Int] = []
        for (index, command) in commands.enumerated() {
            if let address = try? target(of: command) {
                groups[address, default: []].append(index)
            } else {
                unrouted.append(index)
            }
        }
        var replies = [RESPValue](repeating: .null, count: commands.count)
        var failures: [any Error] = []
        if !unrouted.isEmpty {
            let error = RedisNotReadyError(state: machine.state)
            failures.append(error)
            for index in unrouted { replies[index] = Self.notSent("\(error)") }
        }
        let sent = groups.compactMap { address, indices -> (RedisSupervisor, [Int])? in
            guard let node = nodes[address], machine.nodes[address] == .ready else {
                let error = RedisNotReadyError(state: machine.nodes[address] ?? .connecting)
                failures.append(error)
                for index in indices { replies[index] = Self.notSent("\(address) is \(error.state)") }
                return nil
            }
            return (node, indices)
        }
        if sent.count == 1, let (node, indices) = sent.first {
            do {
                let answers = try await node.pipeline(indices.map { commands[$0] })
                for (index, answer) in zip(indices, answers) { replies[index] = answer }
            } catch {
                failures.append(error)
                for index in indices { replies[index] = Self.notSent("\(error)") }
            }
        } else if !sent.isEmpty {
            await withTaskGroup(of: ([Int], Result<[RESPValue], any Error>).self) { group in
                for (node, indices) in sent {
                    let slice = indices.map { commands[$0] }
                    // On the loop, where every node's connection runs: no thread hop per part.
                    group.addTask(executorPreference: loop) {
                        // Built in a variable: returning the tuple from inside the do/catch
                        // crashed release builds (Swift 6.3) while the group copied the result.
                        let result: Result<[RESPValue], any Error>
                        do {
                            result = .success(try await node.pipeline(slice))
                        } catch {
                            result = .failure(error)
                        }
                        return (indices, result)
                    }
                }
                for await (indices, result) in group {
                    switch result {
                    case .success(let answers):
                        for (index, answer) in zip(indices, answers) { replies[index] = answer }
                    case .failure(let error):
                        failures.append(error)
                        for index in indices { replies[index] = Self.notSent("\(error)") }
                    }
                }
            }
        }
        if failures.count == groups.count + (unrouted.isEmpty ? 0 : 1), let first = failures.first {
            throw first
        }
        // Redirected commands are sent again one by one; they are rare (a slot mid-migration).
        for index in replies.indices {
            guard case .error(let message) = replies[index], ClusterRedirect(errorMessage: message) != nil else {
                continue
            }
            do {
                replies[index] = try await followRedirect(message, of: commands[index], redirects: 1)
            } catch {
                replies[index] = .error("\(error)")
            }
        }
        return replies
    }

    /// The reply that stands for a command of a pipeline that was not sent or not answered:
    /// an error reply, as Redis' own refusals are, that no redirect parser mistakes for one.
    static func notSent(_ reason: String) -> RESPValue {
        .error("NOTSENT \(reason)")
    }

    // MARK: Routing

    private func target(of command: RedisCommand) throws(RedisNotReadyError) -> RedisServerAddress {
        if let key = command.routingKey {
            guard let address = machine.table.primary(forKey: key) else {
                throw RedisNotReadyError(state: .unavailable)
            }
            return address
        }
        let primaries = machine.table.servingPrimaries
        guard let address = primaries.first(where: { machine.nodes[$0] == .ready }) ?? primaries.first else {
            throw RedisNotReadyError(state: machine.state)
        }
        return address
    }

    private func readyNode(_ address: RedisServerAddress) throws(RedisNotReadyError) -> RedisSupervisor {
        guard let node = nodes[address], machine.nodes[address] == .ready else {
            throw RedisNotReadyError(
                state: machine.nodes[address] ?? (machine.state == .ready ? .connecting : machine.state))
        }
        return node
    }

    /// Sends one command to `address` and follows what it answers, up to ``maxRedirects``.
    /// Returns the final reply, error replies included.
    private func sendFollowingRedirects(_ command: RedisCommand, to address: RedisServerAddress) async throws
        -> RESPValue
    {
        let reply = try await replyOrError(of: command, on: readyNode(address))
        guard case .error(let message) = reply, ClusterRedirect(errorMessage: message) != nil else { return reply }
        return try await followRedirect(message, of: command, redirects: 1)
    }

    private func followRedirect(_ message: String, of command: RedisCommand, redirects: Int) async throws -> RESPValue {
        guard let redirect = ClusterRedirect(errorMessage: message) else { return .error(message) }
        guard redirects <= Self.maxRedirects else {
            throw RedisError(code: .server, message: "too many cluster redirects; last: \(message)")
        }
        metrics.redirect(redirect)
        let reply: RESPValue
        switch redirect {
        case .moved(let slot, let address):
            handle(.moved(slot, address))
            reply = try await replyOrError(of: command, on: readyNode(address))
        case .ask(_, let address):
            let answers = try await readyNode(address).pipeline([RedisCommand("ASKING", []), command])
            reply = answers.last ?? .null
        case .tryAgain:
            // Polled: nothing signals the end of a slot's migration.
            try await Task.sleep(for: Self.tryAgainPause)
            reply = try await replyOrError(of: command, on: readyNode(target(of: command)))
        case .clusterDown:
            return .error(message)
        }
        guard case .error(let next) = reply, ClusterRedirect(errorMessage: next) != nil else { return reply }
        return try await followRedirect(next, of: command, redirects: redirects + 1)
    }

    /// The reply, with a server error reply returned as a value (redirects are error replies).
    private func replyOrError(of command: RedisCommand, on node: RedisSupervisor) async throws -> RESPValue {
        do {
            return try await node.send(command)
        } catch let error as RedisError where error.code == .server {
            return .error(error.message)
        }
    }

    // MARK: Events

    private func handle(_ event: ClusterStateMachine.Event) {
        let before = machine.state
        let actions = machine.handle(event, now: .now, random: &random)
        if before != machine.state {
            logger.log(
                level: machine.state == .ready || machine.state == .stopped ? .info : .warning,
                "redis cluster state changed",
                metadata: [
                    "redis.state.from": "\(before)", "redis.state.to": "\(machine.state)",
                    "redis.cluster_slots": "\(machine.table)",
                ])
            if before.name != machine.state.name { metrics.recordTransition(from: before, to: machine.state) }
            subscribers.publish(RedisStateChange(from: before, to: machine.state, since: machine.since))
        }
        metrics.recordTable(machine.table)
        perform(actions)
    }

    private func perform(_ actions: [ClusterStateMachine.Action]) {
        for action in actions {
            switch action {
            case .loadTopology:
                Task { await self.loadTopology() }
            case .openNode(let address):
                open(address)
            case .closeNode(let address):
                close(address)
            case .scheduleRefresh(let delay):
                let timer =
                    refreshTimer
                    ?? LoopTimer(loop: loop) { [weak self] in
                        self?.assumeIsolated { $0.handle(.refreshDue) }
                    }
                timer.schedule(after: delay)
                refreshTimer = timer
            case .stop:
                refreshTimer?.cancel()
                for address in Array(nodes.keys) { close(address) }
                subscribers.finishAll()
            }
        }
    }

    private func endpoint(of address: RedisServerAddress) -> RedisEndpoint {
        var endpoint = credentials
        endpoint.host = address.host
        endpoint.port = address.port
        return endpoint
    }

    private func open(_ address: RedisServerAddress) {
        logger.info("redis cluster primary added", metadata: ["redis.node": "\(address)"])
        let node = RedisSupervisor(
            endpoint: endpoint(of: address), loop: loop, policy: machine.policy.retry,
            connectionOptions: connectionOptions, clusterNode: address, logger: logger)
        nodes[address] = node
        watchers[address] = Task {
            for await change in await node.stateChanges() {
                self.nodeChanged(address, node: node, to: change.to)
            }
        }
        Task { await node.start() }
    }

    private func nodeChanged(_ address: RedisServerAddress, node: RedisSupervisor, to state: RedisState) {
        // A node closed and opened again has a new supervisor; the old one's last words are dropped.
        guard nodes[address] === node, state != .stopped else { return }
        handle(.nodeChanged(address, state))
    }

    private func close(_ address: RedisServerAddress) {
        guard let node = nodes.removeValue(forKey: address) else { return }
        logger.info("redis cluster node dropped: it serves no slot", metadata: ["redis.node": "\(address)"])
        watchers.removeValue(forKey: address)?.cancel()
        Task { await node.stop() }
    }

    // MARK: Topology

    private func loadTopology() async {
        // Connected primaries first (one round trip on a live connection), then the seeds and
        // every other known node on a connection of its own.
        let connected = readyNodes
        for node in connected {
            if let table = try? await Self.readTopology(send: { try await node.send($0) }) {
                return topologyRead(table)
            }
        }
        var candidates = seeds
        for address in machine.table.primaries where !candidates.contains(address) { candidates.append(address) }
        var lastError: (any Error)?
        for address in candidates {
            do {
                let connection = try await RedisConnection.connect(
                    to: endpoint(of: address), on: loop, options: connectionOptions, logger: logger)
                defer { Task { await connection.close() } }
                return topologyRead(try await Self.readTopology(send: { try await connection.send($0) }))
            } catch {
                lastError = error
            }
        }
        metrics.topologyReads.failed.increment()
        logger.warning(
            "redis cluster topology could not be read from any node",
            metadata: ["redis.error": "\(lastError.map { "\($0)" } ?? "no node to ask")"])
        handle(.topologyFailed)
    }

    private func topologyRead(_ table: SlotTable) {
        metrics.topologyReads.succeeded.increment()
        if table != machine.table {
            logger.info("redis cluster topology read", metadata: ["redis.cluster_slots": "\(table)"])
        }
        handle(.topologyLoaded(table))
    }

    /// `CLUSTER SHARDS`, or `CLUSTER SLOTS` where the server does not know it (before Redis 7).
    private static func readTopology(send: (RedisCommand) async throws -> RESPValue) async throws -> SlotTable {
        do {
            return SlotTable(
                try ClusterTopology(clusterShardsReply: try await send(RedisCommand("CLUSTER", ["SHARDS"]))))
        } catch let error as RedisError where error.code == .server {
            return SlotTable(try ClusterTopology(clusterSlotsReply: try await send(RedisCommand("CLUSTER", ["SLOTS"]))))
        }
    }
}

/// One primary of a Redis Cluster as `/health` and the status route show it.
public struct RedisNodeStatus: Sendable, Hashable {
    public var address: RedisServerAddress
    public var state: RedisState
    public var slots: [ClosedRange<Int>]
}

/// The cluster front's metrics (see docs/OPERATIONS.md).
struct ClusterMetrics: Sendable {
    struct TopologyReads: Sendable {
        let succeeded = Counter(label: "redis_cluster_topology_reads_total", dimensions: [("result", "ok")])
        let failed = Counter(label: "redis_cluster_topology_reads_total", dimensions: [("result", "failed")])
    }

    let topologyReads = TopologyReads()
    let moved = Counter(label: "redis_cluster_redirects_total", dimensions: [("kind", "moved")])
    let ask = Counter(label: "redis_cluster_redirects_total", dimensions: [("kind", "ask")])
    let tryAgain = Counter(label: "redis_cluster_redirects_total", dimensions: [("kind", "tryagain")])
    let clusterDown = Counter(label: "redis_cluster_redirects_total", dimensions: [("kind", "clusterdown")])
    let primaries = Gauge(label: "redis_cluster_primaries")
    let uncoveredSlots = Gauge(label: "redis_cluster_uncovered_slots")
    private let supervisor = SupervisorMetrics()

    func redirect(_ redirect: ClusterRedirect) {
        switch redirect {
        case .moved: moved.increment()
        case .ask: ask.increment()
        case .tryAgain: tryAgain.increment()
        case .clusterDown: clusterDown.increment()
        }
    }

    func recordTable(_ table: SlotTable) {
        primaries.record(table.servingPrimaries.count)
        uncoveredSlots.record(table.uncoveredSlots)
    }

    func recordState(_ state: RedisState) {
        supervisor.recordState(state)
    }

    func recordTransition(from: RedisState, to: RedisState) {
        supervisor.recordTransition(from: from, to: to)
    }
}
