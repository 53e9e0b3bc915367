/// The Redis keys that coordinate the sync layer across instances (docs/COORDINATION.md).
///
/// Every one shares the hash tag `{sync}`, so that in a Redis Cluster they live in one slot:
/// the scripts touch several at once, and a cluster runs a script only when all its keys are
/// in one slot. (The tag moved these keys from `participants:v1:sync:` to ``prefix``: a new
/// version prefix, so that instances of before and after never share coordination state
/// during a rolling upgrade; docs/OPERATIONS.md has the upgrade path.)
public enum CoordinationKeys {
    /// What every coordination key starts with; the braces are its hash tag.
    public static let prefix = "participants:v2:{sync}:"

    /// The leader lock: `<instance_id>:<token>`, `PX` the lock TTL.
    public static let leader = prefix + "leader"
    /// The fencing counter, `INCR`ed on every acquisition of the lock.
    public static let fence = prefix + "fence"
    /// The shared batch stream, read through the consumer group ``group``.
    public static let batches = prefix + "batches"
    /// The consumer group every instance's batcher reads through.
    public static let group = "batchers"
    /// Run ids by start time (sorted set, score in unix milliseconds), for the status route.
    public static let runs = prefix + "runs"

    /// The last scheduled instant (unix milliseconds) claimed for runs of `slot`.
    public static func tick(_ slot: TickSlot) -> String { prefix + "tick:\(slot.rawValue)" }

    /// One run's shared record (a hash).
    public static func run(_ id: RunID) -> String { runPrefix + id.rawValue }

    /// One run's most recent errors (a list, newest first).
    public static func runErrors(_ id: RunID) -> String { runPrefix + id.rawValue + ":errors" }

    /// The id of the run going in `slot`; what joins and skips are decided against.
    public static func active(_ slot: ActiveSlot) -> String { prefix + "active:\(slot.rawValue)" }

    /// Every active-run key, in the order ``ActiveSlot/allCases`` lists them.
    public static let allActive = ActiveSlot.allCases.map(active)

    /// The prefix of run hashes.
    static let runPrefix = prefix + "run:"

    /// Which scheduled runs a tick key records.
    public enum TickSlot: String, Sendable, CaseIterable {
        case full, interval
        case catchUp = "catch_up"
    }

    /// One run of each slot goes at a time, cluster-wide: full runs (scheduled or manual), and
    /// interval-style runs (interval and catch-up).
    public enum ActiveSlot: String, Sendable, CaseIterable {
        case full, interval

        init(_ kind: SyncRun.Kind) {
            self = kind.isFull ? .full : .interval
        }
    }
}
