/// How the instances that share one Redis coordinate (docs/COORDINATION-L1.md): a short
/// per-chat refresh lock, so a cold chat read everywhere at once costs one upstream call, and
/// an invalidation stream, so a refresh on one instance evicts the older copy from the others'
/// L1.
public struct InstanceCoordination: Sendable, Hashable {
    /// This instance's name (INSTANCE_ID): the lock's owner and the author of invalidations.
    public var instanceID: String
    /// How long a refresh lock lives if its holder never releases it (a crash); waiters stop
    /// waiting after it too.
    public var refreshLockTTL: Duration
    /// How often a waiter looks in Redis for the holder's result.
    public var refreshLockPollInterval: Duration
    /// How often the invalidation stream is read (`XREAD`, never blocking: the connection is shared).
    public var invalidationPollInterval: Duration
    /// `XADD ... MAXLEN ~` of the invalidation stream.
    public var invalidationStreamMaxLength: Int
    /// Stream entries read per `XREAD`.
    public var invalidationReadCount: Int

    public init(
        instanceID: String,
        refreshLockTTL: Duration = .seconds(10),
        refreshLockPollInterval: Duration = .milliseconds(50),
        invalidationPollInterval: Duration = .milliseconds(100),
        invalidationStreamMaxLength: Int = 10_000,
        invalidationReadCount: Int = 100
    ) {
        self.instanceID = instanceID
        self.refreshLockTTL = refreshLockTTL
        self.refreshLockPollInterval = refreshLockPollInterval
        self.invalidationPollInterval = invalidationPollInterval
        self.invalidationStreamMaxLength = invalidationStreamMaxLength
        self.invalidationReadCount = invalidationReadCount
    }

    /// The refresh lock's lifetime for an upstream call bound: the bound, at most 10 s. Past it
    /// waiters fetch themselves (availability over strictness).
    public static func refreshLockTTL(maxAPITimeout: Duration) -> Duration {
        min(maxAPITimeout, .seconds(10))
    }
}
