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
/// Runs on the event loop, like the connection it owns, so sending a command is a plain call.
public actor RedisSupervisor: Service {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let loop: EventLoop
    private let endpoint: RedisEndpoint
    /// The options of every connection it opens; other connections to the same server (a
    /// blocking stream reader) use them too.
    public nonisolated let connectionOptions: RedisConnectionOptions
    private let sentinel: RedisSentinelSettings?
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
    private var subscribers: [Int: AsyncStream<RedisStateChange>.Continuation] = [:]
    private var nextSubscriberID = 0
    private let metrics: SupervisorMetrics

    public init(
        endpoint: RedisEndpoint,
        loop: EventLoop,
        policy: SupervisorStateMachine.Policy,
        connectionOptions: RedisConnectionOptions,
        sentinel: RedisSentinelSettings? = nil,
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        logger: Logger
    ) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.loop = loop
        self.endpoint = endpoint
        self.connectionOptions = connectionOptions
        self.sentinel = sentinel?.sentinels.isEmpty == false ? sentinel : nil
        self.machine = SupervisorStateMachine(policy: policy, now: .now)
        self.random = random
        var logger = logger
        if let sentinel = self.sentinel {
            logger[metadataKey: "redis.sentinel_master"] = "\(sentinel.masterName)"
        } else {
            logger[metadataKey: "redis.endpoint"] = "\(endpoint.redactedDescription)"
        }
        self.logger = logger
        self.metrics = SupervisorMetrics()
    }

    // MARK: Service

    /// Connects, then supervises until graceful shutdown, then closes the connection.
    public func run() async throws {
        metrics.recordState(machine.state)
        perform([.connect])
        // Suspends until graceful shutdown (or cancellation) of the service group.
        try? await gracefulShutdown()
        handle(.shutdown, reason: "shutdown")
    }

    // MARK: State

    /// The current state.
    public var state: RedisState { machine.state }

    /// When the current state began.
    public var since: ContinuousClock.Instant { machine.since }

    /// The server the live connection goes to (with Sentinel, the master found); nil when not `ready`.
    public var connectedEndpoint: RedisEndpoint? {
        machine.state == .ready ? connection?.endpoint : nil
    }

    /// Whether the server must be a master: true with Sentinel discovery, where a demoted
    /// master (a replica now) means a failover happened and the connection must move.
    public nonisolated var requiresMasterRole: Bool { sentinel != nil }

    /// A stream of every state change from now on; it starts with the current state
    /// (as a change from itself) and ends when the supervisor stops.
    public func stateChanges() -> AsyncStream<RedisStateChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: RedisStateChange.self)
        let id = nextSubscriberID
        nextSubscriberID += 1
        continuation.yield(RedisStateChange(from: machine.state, to: machine.state, since: machine.since))
        if machine.state == .stopped {
            continuation.finish()
            return stream
        }
        subscribers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            Task { await self?.unsubscribe(id) }
        }
        return stream
    }

    private func unsubscribe(_ id: Int) {
        subscribers[id] = nil
    }

    // MARK: Commands

    /// Sends one command on the current connection; throws ``RedisNotReadyError`` at once when
    /// not `ready`, or the connection's `RedisError`.
    public func send(_ command: RedisCommand) async throws -> RESPValue {
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
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
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
                for continuation in subscribers.values { continuation.finish() }
                subscribers.removeAll()
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
            return try await RedisConnection.connect(to: endpoint, on: loop, options: connectionOptions, logger: logger)
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
        let role: String
        do {
            role = try await RedisSentinel.role(of: connection)
        } catch {
            await connection.close()
            throw error
        }
        guard role == "master" else {
            await connection.close()
            // The sentinels' view lags a failover in progress: retry through the backoff.
            throw RedisError(
                code: .connectFailed,
                message: "\(master.host):\(master.port), named master by the sentinels, reports role \(role)")
        }
        return connection
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
        for continuation in subscribers.values { continuation.yield(change) }
    }
}

/// The supervisor's metrics (see docs/OPERATIONS.md for their meaning).
struct SupervisorMetrics: Sendable {
    let commandDuration = Metrics.Timer(label: "redis_command_duration_seconds")
    let pipelineDuration = Metrics.Timer(label: "redis_pipeline_duration_seconds")

    func recordTransition(from: RedisState, to: RedisState) {
        Counter(label: "redis_state_transitions_total", dimensions: [("from", from.name), ("to", to.name)])
            .increment()
        recordState(to)
    }

    func recordState(_ state: RedisState) {
        for name in RedisState.allNames {
            Gauge(label: "redis_state", dimensions: [("state", name)]).record(name == state.name ? 1 : 0)
        }
    }
}
