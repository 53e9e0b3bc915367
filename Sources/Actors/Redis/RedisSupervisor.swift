public import ChatRuntime
public import Logging
import Metrics
public import ServiceLifecycle

/// One observed change of the supervisor's state.
public struct RedisStateChange: Sendable, Hashable {
    public var from: RedisState
    public var to: RedisState
    /// When `to` began, on the continuous clock.
    public var since: ContinuousClock.Instant
}

/// Thrown by ``RedisSupervisor`` commands while Redis is not `ready`: callers degrade at once
/// instead of waiting for a connection that may take a long time to come back.
public struct RedisNotReadyError: Error, Sendable, CustomStringConvertible {
    public var state: RedisState
    public var description: String { "redis is \(state)" }
}

/// Owns the Redis connection and carries out ``SupervisorStateMachine``: connects, reconnects
/// with backoff, probes while unavailable, never gives up, and publishes every state change.
///
/// With Redis Sentinel settings, every connection attempt first asks the sentinels for the
/// master's address (the endpoint's host and port are then ignored; its password, user and
/// database apply), and accepts the server only when `ROLE` says `master`. A failover is
/// followed through the states: the old master dies or is reconfigured (its clients are
/// dropped), or answers a write with `-READONLY`, or the ``HealthMonitor``'s `ROLE` check sees
/// it demoted; the connection is dropped, and the reconnect asks the sentinels again.
///
/// With Redis Cluster (``init(cluster:loop:connectionOptions:)``) it is the front of a
/// ``RedisCluster``: commands are routed to the primary of their key's slot, each primary's
/// connection runs under a node supervisor of its own (this type, for one node), and the state
/// is the cluster's derived one.
///
/// Runs on the event loop, like the connection it owns, so sending a command is a plain call.
public actor RedisSupervisor: Service {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let loop: EventLoop
    private let endpoint: RedisEndpoint
    /// The options of every connection it opens; other connections to the same server (a
    /// blocking stream reader) use them too.
    public nonisolated let connectionOptions: RedisConnectionOptions
    private let sentinel: RedisSentinelSettings?
    /// Set for a node supervisor of a cluster: the node must be a primary.
    private let clusterNode: RedisServerAddress?
    /// Set for the front of a Redis Cluster: everything is forwarded to it.
    private let cluster: RedisCluster?
    private let logger: Logger
    private var machine: SupervisorStateMachine
    private var random: any RandomNumberGenerator & Sendable
    private var connection: RedisConnection?
    /// The master the sentinels named last, to log changes once.
    private var lastDiscoveredMaster: RedisEndpoint?
    /// Bumped for every connection attempt and every dropped connection, so late events of a
    /// superseded attempt or connection are recognised and ignored.
    private var generation = 0
    private var retryTimer: LoopTimer?
    private var probeTimer: LoopTimer?
    private var subscribers = StateSubscribers()
    private let metrics: SupervisorMetrics

    public init(
        endpoint: RedisEndpoint,
        loop: EventLoop,
        policy: SupervisorStateMachine.Policy,
        connectionOptions: RedisConnectionOptions,
        sentinel: RedisSentinelSettings? = nil,
        clusterNode: RedisServerAddress? = nil,
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        logger: Logger
    ) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.loop = loop
        self.endpoint = endpoint
        self.connectionOptions = connectionOptions
        self.sentinel = sentinel?.sentinels.isEmpty == false ? sentinel : nil
        self.clusterNode = clusterNode
        self.cluster = nil
        self.machine = SupervisorStateMachine(policy: policy, now: .now)
        self.random = random
        var logger = logger
        if let sentinel = self.sentinel {
            logger[metadataKey: "redis.sentinel_master"] = "\(sentinel.masterName)"
        } else if let clusterNode {
            logger[metadataKey: "redis.node"] = "\(clusterNode)"
        } else {
            logger[metadataKey: "redis.endpoint"] = "\(endpoint.redactedDescription)"
        }
        self.logger = logger
        self.metrics = SupervisorMetrics(node: clusterNode?.description)
    }

    /// The front of a Redis Cluster: commands, states and health go through `cluster`.
    public init(cluster: RedisCluster, loop: EventLoop, connectionOptions: RedisConnectionOptions, logger: Logger) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.loop = loop
        self.endpoint = RedisEndpoint(host: "", port: RedisEndpoint.defaultPort)
        self.connectionOptions = connectionOptions
        self.sentinel = nil
        self.clusterNode = nil
        self.cluster = cluster
        // Unused: the cluster derives the state from its nodes' machines.
        self.machine = SupervisorStateMachine(
            policy: .init(maxRetries: 0, backoff: Backoff(initial: .zero, maximum: .zero), probeInterval: .seconds(1)),
            now: .now)
        self.random = SystemRandomNumberGenerator()
        self.logger = logger
        self.metrics = SupervisorMetrics()
    }

    // MARK: Service

    /// Connects, then supervises until graceful shutdown, then closes the connection.
    public func run() async throws {
        start()
        // Suspends until graceful shutdown (or cancellation) of the service group.
        try? await gracefulShutdown()
        stop()
    }

    /// Starts connecting; what ``run()`` does first, and what a cluster does for its nodes. The
    /// front of a cluster does nothing: the ``RedisCluster`` is a service of its own.
    func start() {
        guard cluster == nil else { return }
        metrics.recordState(machine.state)
        perform([.connect])
    }

    /// Closes the connection and stops for good.
    func stop() {
        guard cluster == nil else { return }
        handle(.shutdown, reason: "shutdown")
    }

    // MARK: State

    /// The current state (with a cluster, the derived one: `ready` when every slot's primary is).
    public var state: RedisState {
        get async { if let cluster { await cluster.state } else { machine.state } }
    }

    /// When the current state began.
    public var since: ContinuousClock.Instant {
        get async { if let cluster { await cluster.since } else { machine.since } }
    }

    /// The server the live connection goes to (with Sentinel, the master found); nil when not
    /// `ready`, and with a cluster (see ``connectedEndpoint(forKey:)``).
    public var connectedEndpoint: RedisEndpoint? {
        machine.state == .ready && cluster == nil ? connection?.endpoint : nil
    }

    /// The server that holds `key`, when connected: the one server, or the cluster primary of
    /// the key's slot. For connections of their own, such as a blocking read.
    public func connectedEndpoint(forKey key: String) async -> RedisEndpoint? {
        if let cluster { return await cluster.connectedEndpoint(forKey: key) }
        return connectedEndpoint
    }

    /// Whether this is the front of a Redis Cluster.
    public nonisolated var isCluster: Bool { cluster != nil }

    /// With a cluster, each primary with its state and slots; nil for one server.
    public var clusterNodes: [RedisNodeStatus]? {
        get async { await cluster?.nodeStatus }
    }

    /// The supervisors a health check PINGs: this one, or each connected cluster primary's.
    public var healthCheckTargets: [RedisSupervisor] {
        get async {
            guard let cluster else { return [self] }
            return await cluster.readyNodes
        }
    }

    /// Whether the server must be a master: true with Sentinel discovery, where a demoted
    /// master (a replica now) means a failover happened and the connection must move, and for
    /// a cluster primary, whose demotion means its replica took over.
    public nonisolated var requiresMasterRole: Bool { sentinel != nil || clusterNode != nil }

    /// A stream of every state change from now on; it starts with the current state
    /// (as a change from itself) and ends when the supervisor stops.
    public func stateChanges() async -> AsyncStream<RedisStateChange> {
        if let cluster { return await cluster.stateChanges() }
        return subscribers.add(
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

    /// Sends one command on the current connection; throws ``RedisNotReadyError`` at once when
    /// not `ready`, or the connection's `RedisError`.
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        if let cluster { return try await cluster.send(command) }
        guard machine.state == .ready, let connection else {
            throw RedisNotReadyError(state: machine.state)
        }
        let started = ContinuousClock.now
        defer { metrics.commandDuration.recordDuration(ContinuousClock.now - started) }
        do {
            return try await connection.send(command)
        } catch {
            if error.code == .server, Self.isReadOnlyRefusal(error.message) {
                noticeReadOnlyRefusal(on: connection, message: error.message)
            }
            throw error
        }
    }

    /// Sends commands as one pipeline; see ``send(_:)``.
    ///
    /// With a cluster: one pipeline per primary, sent at once; see ``RedisCluster/pipeline(_:)``.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        if let cluster { return try await cluster.pipeline(commands) }
        guard machine.state == .ready, let connection else {
            throw RedisNotReadyError(state: machine.state)
        }
        let started = ContinuousClock.now
        defer { metrics.pipelineDuration.recordDuration(ContinuousClock.now - started) }
        let replies = try await connection.pipeline(commands)
        if let refusal = replies.lazy.compactMap(\.errorMessage).first(where: Self.isReadOnlyRefusal) {
            noticeReadOnlyRefusal(on: connection, message: refusal)
        }
        return replies
    }

    /// Reports that the connection looks broken (a failed or late PING, a demoted master): drop
    /// it and reconnect.
    public func reportFailure(reason: String) {
        guard machine.state == .ready, let connection else { return }
        dropConnection(connection)
        handle(.connectionLost, reason: reason)
    }

    /// A write refused with `-READONLY`: the server is a replica now. With Sentinel that means a
    /// failover, so the connection moves; without it the same address would give the same
    /// replica, so the refusal is only logged (the caller sees the error reply either way).
    private func noticeReadOnlyRefusal(on refusing: RedisConnection, message: String) {
        guard requiresMasterRole else {
            logger.warning(
                "redis refused a write: the server is a read-only replica", metadata: ["redis.error": "\(message)"])
            return
        }
        // A late reply of a connection already replaced must not drop its successor.
        guard connection === refusing else { return }
        reportFailure(reason: "the server is no longer the master: \(message)")
    }

    static func isReadOnlyRefusal(_ message: String) -> Bool {
        message.hasPrefix("READONLY")
    }

    // MARK: Events

    private func handle(_ event: SupervisorStateMachine.Event, reason: String?) {
        let outcome = machine.handle(event, now: .now, random: &random)
        switch outcome {
        case .ignored(let state, let event):
            logger.debug(
                "redis supervisor ignored an event",
                metadata: [
                    "redis.state": "\(state)", "redis.event": "\(event)",
                ])
        case .transition(let from, let to, let actions):
            if from != to {
                var metadata: Logger.Metadata = ["redis.state.from": "\(from)", "redis.state.to": "\(to)"]
                if let reason { metadata["redis.reason"] = "\(reason)" }
                logger.log(
                    level: to == .ready || to == .stopped ? .info : .warning, "redis state changed", metadata: metadata)
                metrics.recordTransition(from: from, to: to)
                publish(RedisStateChange(from: from, to: to, since: machine.since))
            }
            perform(actions)
        }
    }

    private func perform(_ actions: [SupervisorStateMachine.Action]) {
        for action in actions {
            switch action {
            case .connect:
                startConnectAttempt()
            case .scheduleRetry(let delay):
                retryTimer = arm(retryTimer, after: delay, event: .retryDue)
            case .scheduleProbe(let delay):
                probeTimer = arm(probeTimer, after: delay, event: .probeDue)
            case .closeConnection:
                retryTimer?.cancel()
                probeTimer?.cancel()
                if let connection { dropConnection(connection) }
                generation += 1
                subscribers.finishAll()
            }
        }
    }

    private func arm(_ timer: LoopTimer?, after delay: Duration, event: SupervisorStateMachine.Event) -> LoopTimer {
        let timer =
            timer
            ?? LoopTimer(loop: loop) { [weak self] in
                self?.assumeIsolated { $0.handle(event, reason: nil) }
            }
        timer.schedule(after: delay)
        return timer
    }

    private func startConnectAttempt() {
        generation += 1
        let attempt = generation
        Task { await self.connect(attempt: attempt) }
    }

    private func connect(attempt: Int) async {
        let result: Result<RedisConnection, RedisError>
        do {
            result = .success(try await openConnection())
        } catch {
            result = .failure(error)
        }
        guard attempt == generation, machine.state != .stopped else {
            if case .success(let stale) = result { await stale.close() }
            return
        }
        switch result {
        case .success(let newConnection):
            connection = newConnection
            handle(.connected, reason: nil)
            watch(newConnection, generation: attempt)
        case .failure(let error):
            logger.debug("redis connect attempt failed", metadata: ["redis.error": "\(error)"])
            handle(.connectFailed, reason: "\(error)")
        }
    }

    /// Connects to the endpoint, or with Sentinel to the master the sentinels name, checked with ROLE.
    private func openConnection() async throws(RedisError) -> RedisConnection {
        guard let sentinel else {
            let connection = try await RedisConnection.connect(
                to: endpoint, on: loop, options: connectionOptions, logger: logger)
            if clusterNode != nil { try await requirePrimary(connection, named: "by the cluster topology") }
            return connection
        }
        let master = try await RedisSentinel.masterEndpoint(
            sentinel, base: endpoint, on: loop, connectTimeout: connectionOptions.connectTimeout, logger: logger)
        if master != lastDiscoveredMaster {
            logger.info(
                "redis sentinels name the master",
                metadata: [
                    "redis.master": "\(master.host):\(master.port)",
                    "redis.previous_master": "\(lastDiscoveredMaster.map { "\($0.host):\($0.port)" } ?? "none")",
                ])
            lastDiscoveredMaster = master
        }
        let connection = try await RedisConnection.connect(
            to: master, on: loop, options: connectionOptions, logger: logger)
        // The sentinels' view lags a failover in progress: a refusal retries through the backoff.
        try await requirePrimary(connection, named: "by the sentinels")
        return connection
    }

    /// Closes `connection` and throws unless `ROLE` says the server is a master.
    private func requirePrimary(_ connection: RedisConnection, named source: String) async throws(RedisError) {
        let role: String
        do {
            role = try await RedisSentinel.role(of: connection)
        } catch {
            await connection.close()
            throw error
        }
        guard role == "master" else {
            await connection.close()
            let address = connection.endpoint
            throw RedisError(
                code: .connectFailed,
                message: "\(address.host):\(address.port), named master \(source), reports role \(role)")
        }
    }

    private func watch(_ watched: RedisConnection, generation watchedGeneration: Int) {
        Task {
            let reason = await watched.waitUntilClosed()
            self.connectionClosed(generation: watchedGeneration, reason: reason)
        }
    }

    private func connectionClosed(generation closedGeneration: Int, reason: RedisError) {
        guard closedGeneration == generation, let connection else { return }
        dropConnection(connection)
        handle(.connectionLost, reason: "\(reason)")
    }

    private func dropConnection(_ dropped: RedisConnection) {
        generation += 1
        connection = nil
        Task { await dropped.close() }
    }

    private func publish(_ change: RedisStateChange) {
        subscribers.publish(change)
    }
}

/// The supervisor's metrics (see docs/OPERATIONS.md for their meaning). A cluster node's carry
/// its address as `node` and are named `redis_node_*`; the service-wide `redis_state` is the
/// cluster's derived state then.
struct SupervisorMetrics: Sendable {
    let commandDuration: Metrics.Timer
    let pipelineDuration: Metrics.Timer
    private let node: String?

    init(node: String? = nil) {
        self.node = node
        // One label set per metric name, as Prometheus wants: a node's metrics have names of their own.
        let prefix = node == nil ? "redis" : "redis_node"
        let dimensions = node.map { [("node", $0)] } ?? []
        commandDuration = Metrics.Timer(label: "\(prefix)_command_duration_seconds", dimensions: dimensions)
        pipelineDuration = Metrics.Timer(label: "\(prefix)_pipeline_duration_seconds", dimensions: dimensions)
    }

    func recordTransition(from: RedisState, to: RedisState) {
        if let node {
            Counter(
                label: "redis_node_state_transitions_total",
                dimensions: [("node", node), ("from", from.name), ("to", to.name)]
            ).increment()
        } else {
            Counter(label: "redis_state_transitions_total", dimensions: [("from", from.name), ("to", to.name)])
                .increment()
        }
        recordState(to)
    }

    func recordState(_ state: RedisState) {
        for name in RedisState.allNames {
            let gauge =
                node.map { Gauge(label: "redis_node_state", dimensions: [("node", $0), ("state", name)]) }
                ?? Gauge(label: "redis_state", dimensions: [("state", name)])
            gauge.record(name == state.name ? 1 : 0)
        }
    }
}
