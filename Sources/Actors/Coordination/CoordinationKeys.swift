/// The Redis keys that coordinate the sync layer across instances (docs/COORDINATION.md).
///
/// Not cluster-safe by design: the scripts touch several of these keys at once, which a Redis
/// Cluster would only allow under one hash tag. The service talks to one Redis (or a Sentinel
/// group), where that does not matter.
public enum CoordinationKeys {
    /// The leader lock: `<instance_id>:<token>`, `PX` the lock TTL.
    public static let leader = "participants:v1:sync:leader"
    /// The fencing counter, `INCR`ed on every acquisition of the lock.
    public static let fence = "participants:v1:sync:fence"
    /// The shared batch stream, read through the consumer group ``group``.
    public static let batches = "participants:v1:sync:batches"
    /// The consumer group every instance's batcher reads through.
    public static let group = "batchers"
    /// Run ids by start time (sorted set, score in unix milliseconds), for the status route.
    public static let runs = "participants:v1:sync:runs"

    /// The last scheduled instant (unix milliseconds) claimed for runs of `slot`.
    public static func tick(_ slot: TickSlot) -> String { "participants:v1:sync:tick:\(slot.rawValue)" }

    /// One run's shared record (a hash).
    public static func run(_ id: RunID) -> String { "participants:v1:sync:run:\(id.rawValue)" }

    /// One run's most recent errors (a list, newest first).
    public static func runErrors(_ id: RunID) -> String { "participants:v1:sync:run:\(id.rawValue):errors" }

    /// The id of the run going in `slot`; what joins and skips are decided against.
    public static func active(_ slot: ActiveSlot) -> String { "participants:v1:sync:active:\(slot.rawValue)" }

    /// Every active-run key, in the order ``ActiveSlot/allCases`` lists them.
    public static let allActive = ActiveSlot.allCases.map(active)

    /// The prefix of run hashes, for scripts that reach a run named only by its id.
    static let runPrefix = "participants:v1:sync:run:"

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
