/// How instances share the sync work through Redis (docs/COORDINATION.md). The defaults suit
/// production; tests shorten the durations.
public struct CoordinationSettings: Sendable, Hashable {
    /// This instance's name: its consumer name in the group and the first part of the lock value.
    /// Must be unique among the instances sharing a Redis.
    public var instanceID: String
    /// PARTICIPANTS_LEADER_LOCK_TTL: how long the leader lock lives without renewal. The leader
    /// renews every third of it; another instance takes over within about this long after the
    /// leader dies.
    public var lockTTL: Duration = .seconds(15)
    /// `XADD ... MAXLEN ~ N`: entries the batch stream keeps (processed ones included).
    public var streamMaxLength: Int = 10_000
    /// A batch delivered to an instance but not acknowledged for this long is claimed by another
    /// (`XAUTOCLAIM`): its reader is taken for dead. Longer than a batch can take.
    public var claimMinIdle: Duration = .seconds(60)
    /// How long an idle reader's blocking read (on a connection of its own) waits for an append
    /// before it is sent again.
    public var blockTime: Duration = .seconds(5)
    /// How often an idle reader polls the stream when it has no connection for a blocking read
    /// (and how often a paused producer retries its append). Never `BLOCK` on the shared
    /// connection: it is pipelined, a blocking read would stall every other command behind it.
    public var pollInterval: Duration = .milliseconds(200)
    /// How often the leader looks for runs to produce and ticks to claim, and every instance
    /// forwards manual requests kept while Redis was away.
    public var maintenanceInterval: Duration = .milliseconds(500)
    /// Batches at most one instance holds (read, not yet acknowledged); nil: twice the batcher's
    /// current concurrency limit, following it as it adapts.
    public var holdLimit: Int?
    /// Batches of one run appended but not yet accounted for, per live instance, before the
    /// producer waits; nil: twice the hold limit. Capped at half the stream length, so trimming
    /// never reaches a batch nobody has processed.
    public var backlogPerInstance: Int?
    /// At most this many batches per append script.
    public var appendGroupSize: Int = 16
    /// How long run records and tick claims are kept in Redis.
    public var retention: Duration = .seconds(3 * 86_400)
    /// Runs listed in the run index (the status route shows the most recent of them).
    public var runIndexLimit: Int = 100
    /// A run whose producer finished but whose batches stopped coming back for this long is
    /// failed, so it does not block new runs forever; nil: ten times `claimMinIdle`.
    public var stuckRunAfter: Duration?
    /// Catch-up runs are claimed like ticks: one per this gap at most, cluster-wide.
    public var catchUpMinGap: Duration = .seconds(60)

    public init(instanceID: String) {
        self.instanceID = instanceID
    }

    /// The backlog one run may have with `liveInstances` instances reading, each holding up to
    /// `holdLimit` batches.
    func backlogLimit(liveInstances: Int, holdLimit: Int) -> Int {
        let perInstance = backlogPerInstance ?? 2 * max(1, holdLimit)
        return max(1, min(perInstance * max(1, liveInstances), streamMaxLength / 2))
    }

    var effectiveStuckRunAfter: Duration {
        stuckRunAfter ?? claimMinIdle * 10
    }

    func validate() {
        precondition(!instanceID.isEmpty, "the instance id must not be empty")
        precondition(lockTTL >= .milliseconds(30), "the lock TTL must be at least 30 ms")
        precondition(streamMaxLength >= 2, "the stream must keep at least 2 entries")
        precondition(claimMinIdle > .zero, "claimMinIdle must be positive")
        precondition(pollInterval > .zero && maintenanceInterval > .zero, "poll intervals must be positive")
        precondition(blockTime >= .milliseconds(1), "the block time must be at least 1 ms")
        precondition(appendGroupSize >= 1 && runIndexLimit >= 1, "limits must be at least 1")
        precondition(retention >= .seconds(60), "retention must be at least a minute")
    }
}
