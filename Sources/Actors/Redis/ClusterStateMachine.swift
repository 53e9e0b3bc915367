public import ChatRuntime

/// The Redis Cluster front's state machine as a pure value: which primaries to keep a
/// connection to, when to read the topology, and the one Redis state the rest of the service
/// sees, derived from the state of every slot's primary. No I/O, no clock reads.
///
/// Each primary's connection runs under its own ``SupervisorStateMachine`` (in a node
/// ``RedisSupervisor``); this machine is told of their changes and of topology reads:
///
/// ```
/// start                      -> read the topology
/// topologyLoaded(table)      -> open a node for each new primary, close those gone; refresh
///                               after the refresh interval (the probe interval, if shorter,
///                               while not everything is served)
/// topologyFailed             -> before any topology: retry with backoff (reconnecting(n),
///                               then unavailable at the probe interval); after: keep the
///                               table, retry with backoff capped at the refresh interval
/// nodeChanged(a, s)          -> record it; a primary that is not ready (lost, or failing to
///                               reconnect) may have failed over: read the topology
/// moved(slot, a)             -> the slot is a's now; open a if new; read the topology
/// refreshDue                 -> read the topology (unless a read is going)
/// shutdown                   -> stopped; close every node
/// ```
///
/// The derived state is `ready` when every slot has a primary whose connection is ready;
/// otherwise `unavailable` when a slot has no primary or a primary is unavailable,
/// `reconnecting(n)` while a primary reconnects (n its highest attempt), and `connecting`
/// before the first topology and connections. A shard that is down degrades only its own
/// keys: commands to the other primaries go on.
public struct ClusterStateMachine: Sendable {
    /// How hard and how often to retry, and how often to re-read the topology.
    public struct Policy: Sendable, Equatable {
        /// The retry policy of topology reads before the first one succeeds; each node's
        /// connection uses it too.
        public var retry: SupervisorStateMachine.Policy
        /// The period of topology reads while everything is served (REDIS_CLUSTER_REFRESH_INTERVAL).
        public var refreshInterval: Duration

        public init(retry: SupervisorStateMachine.Policy, refreshInterval: Duration) {
            self.retry = retry
            self.refreshInterval = refreshInterval
        }
    }

    /// What happened.
    public enum Event: Sendable, Hashable {
        /// The service starts.
        case start
        /// A topology read succeeded.
        case topologyLoaded(SlotTable)
        /// A topology read failed on every node asked.
        case topologyFailed
        /// A node's connection changed state.
        case nodeChanged(RedisServerAddress, RedisState)
        /// A node answered `MOVED`: the slot is served by the address now.
        case moved(HashSlot, RedisServerAddress)
        /// The refresh (or retry) timer fired.
        case refreshDue
        /// The service is shutting down.
        case shutdown
    }

    /// What the actor must do next.
    public enum Action: Sendable, Hashable {
        /// Read the topology; answer with ``Event/topologyLoaded(_:)`` or ``Event/topologyFailed``.
        case loadTopology
        /// Start a supervised connection to a primary.
        case openNode(RedisServerAddress)
        /// Stop the connection to a node that serves no slot any more.
        case closeNode(RedisServerAddress)
        /// Fire ``Event/refreshDue`` after the delay (replacing the timer set before).
        case scheduleRefresh(after: Duration)
        /// Close every node and cancel the timer.
        case stop
    }

    public let policy: Policy
    /// The derived state, as the rest of the service sees it.
    public private(set) var state: RedisState = .connecting
    /// When the derived state's name last changed.
    public private(set) var since: ContinuousClock.Instant
    /// Which primary serves each slot, as last read (corrected by `MOVED` in between).
    public private(set) var table = SlotTable()
    /// The state of each node a connection is kept to.
    public private(set) var nodes: [RedisServerAddress: RedisState] = [:]
    /// Whether a topology read is going; a second one is not started meanwhile.
    public private(set) var loading = false
    /// Whether a topology was ever read.
    public private(set) var loaded = false
    /// Failed topology reads since the last one that succeeded.
    public private(set) var failedLoads = 0
    /// Whether the derived state was ever `ready`: later losses read as reconnecting.
    private var wasReady = false

    public init(policy: Policy, now: ContinuousClock.Instant) {
        self.policy = policy
        self.since = now
    }

    /// The one transition function: applies `event` and returns what to do.
    public mutating func handle(
        _ event: Event, now: ContinuousClock.Instant, random: inout some RandomNumberGenerator
    ) -> [Action] {
        guard state != .stopped else { return [] }
        var actions: [Action] = []
        switch event {
        case .start, .refreshDue:
            actions += startLoad()
        case .topologyLoaded(let newTable):
            loading = false
            loaded = true
            failedLoads = 0
            let wanted = Set(newTable.servingPrimaries)
            for address in newTable.servingPrimaries where nodes[address] == nil {
                nodes[address] = .connecting
                actions.append(.openNode(address))
            }
            for address in nodes.keys.sorted(by: { $0.description < $1.description }) where !wanted.contains(address) {
                nodes[address] = nil
                actions.append(.closeNode(address))
            }
            table = newTable
            derive(now: now)
            // While a slot is unserved or a primary is not connected, the topology is read more
            // often: that is how a promoted replica is found.
            let period =
                state == .ready ? policy.refreshInterval : min(policy.refreshInterval, policy.retry.probeInterval)
            actions.append(.scheduleRefresh(after: period))
        case .topologyFailed:
            loading = false
            failedLoads += 1
            actions.append(.scheduleRefresh(after: retryDelay(random: &random)))
        case .nodeChanged(let address, let nodeState):
            guard let previous = nodes[address] else { return [] }
            nodes[address] = nodeState
            // Each failed reconnect of a primary may mean it failed over: read the topology again
            // (at the pace of the node's backoff).
            if nodeState != .ready, nodeState != previous { actions += startLoad() }
        case .moved(let slot, let address):
            table.move(slot, to: address)
            if nodes[address] == nil {
                nodes[address] = .connecting
                actions.append(.openNode(address))
            }
            actions += startLoad()
        case .shutdown:
            loading = false
            state = .stopped
            since = now
            return [.stop]
        }
        derive(now: now)
        return actions
    }

    private mutating func startLoad() -> [Action] {
        guard !loading else { return [] }
        loading = true
        return [.loadTopology]
    }

    /// The wait before the next topology read after a failed one: the reconnect backoff, the
    /// probe interval once the retries are spent before any topology, and never longer than
    /// the refresh interval once there is one.
    private func retryDelay(random: inout some RandomNumberGenerator) -> Duration {
        let retry = policy.retry
        if !loaded, failedLoads > retry.maxRetries { return retry.probeInterval }
        let backoff = retry.backoff.delay(attempt: failedLoads, random: &random)
        return loaded ? min(backoff, policy.refreshInterval) : backoff
    }

    private mutating func derive(now: ContinuousClock.Instant) {
        let next: RedisState
        if !loaded {
            if failedLoads == 0 {
                next = .connecting
            } else if failedLoads <= policy.retry.maxRetries {
                next = .reconnecting(attempt: failedLoads)
            } else {
                next = .unavailable
            }
        } else {
            next = servedState()
        }
        if next == .ready { wasReady = true }
        if next.name != state.name { since = now }
        state = next
    }

    private func servedState() -> RedisState {
        let owners = table.servingPrimaries.map { nodes[$0] ?? .connecting }
        if table.uncoveredSlots > 0 || owners.contains(.unavailable) { return .unavailable }
        if owners.allSatisfy({ $0 == .ready }) { return .ready }
        let attempts = owners.compactMap { state -> Int? in
            if case .reconnecting(let attempt) = state { return attempt }
            return nil
        }
        if let highest = attempts.max() { return .reconnecting(attempt: highest) }
        return wasReady ? .reconnecting(attempt: 1) : .connecting
    }
}
