public import Foundation

/// What `GET /internal/participants/status` shows of the sync layer: runs going, runs ended
/// recently, totals since start-up, the schedule, the batcher's load and the coordination
/// between instances. Snake_case keys, ISO 8601 dates whatever the encoder's date strategy.
///
/// `running` and `recent` are the cluster's runs as recorded in Redis, while `totals` and
/// `batcher` are this instance's.
public struct SyncStatus: Sendable, Hashable, Encodable {
    /// Since start-up, every run and what all of them did.
    public struct Totals: Sendable, Hashable, Encodable {
        public var runsStarted = 0
        public var runsCompleted = 0
        public var runsFailed = 0
        public var runsCancelled = 0
        public var chatsRefreshed = 0
        public var chatsNotFound = 0
        public var chatsFailed = 0
        public var batchesDone = 0
        public var batchesDeferred = 0
        public var batchesFailed = 0
        public var batchesSkipped = 0

        public init() {}

        enum CodingKeys: String, CodingKey {
            case runsStarted = "runs_started"
            case runsCompleted = "runs_completed"
            case runsFailed = "runs_failed"
            case runsCancelled = "runs_cancelled"
            case chatsRefreshed = "chats_refreshed"
            case chatsNotFound = "chats_not_found"
            case chatsFailed = "chats_failed"
            case batchesDone = "batches_done"
            case batchesDeferred = "batches_deferred"
            case batchesFailed = "batches_failed"
            case batchesSkipped = "batches_skipped"
        }
    }

    /// When the next runs are due and what is switched on.
    public struct Schedule: Sendable, Hashable, Encodable {
        public var intervalRunsEnabled: Bool
        public var fullRunsEnabled: Bool
        public var catchUpRunsEnabled: Bool
        public var updateIntervalSeconds: Double
        public var fullUpdateHour: Int
        public var timeZone: String
        public var nextIntervalRunAt: Date?
        public var nextFullRunAt: Date?

        enum CodingKeys: String, CodingKey {
            case intervalRunsEnabled = "interval_runs_enabled"
            case fullRunsEnabled = "full_runs_enabled"
            case catchUpRunsEnabled = "catch_up_runs_enabled"
            case updateIntervalSeconds = "update_interval_seconds"
            case fullUpdateHour = "full_update_hour"
            case timeZone = "time_zone"
            case nextIntervalRunAt = "next_interval_run_at"
            case nextFullRunAt = "next_full_run_at"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(intervalRunsEnabled, forKey: .intervalRunsEnabled)
            try container.encode(fullRunsEnabled, forKey: .fullRunsEnabled)
            try container.encode(catchUpRunsEnabled, forKey: .catchUpRunsEnabled)
            try container.encode(updateIntervalSeconds, forKey: .updateIntervalSeconds)
            try container.encode(fullUpdateHour, forKey: .fullUpdateHour)
            try container.encode(timeZone, forKey: .timeZone)
            try container.encode(nextIntervalRunAt.map(ISO8601Timestamp.string(from:)), forKey: .nextIntervalRunAt)
            try container.encode(nextFullRunAt.map(ISO8601Timestamp.string(from:)), forKey: .nextFullRunAt)
        }
    }

    /// The batcher's load and limits.
    public struct BatcherLoad: Sendable, Hashable, Encodable {
        public var queued: Int
        public var inFlight: Int
        public var peakInFlight: Int
        /// Batches in flight allowed now: the adaptive limit (docs/COORDINATION.md).
        public var concurrencyLimit: Int
        /// PARTICIPANTS_MAX_BATCHES_IN_FLIGHT: the limit's ceiling.
        public var maxInFlight: Int
        public var batchSize: Int

        enum CodingKeys: String, CodingKey {
            case queued
            case inFlight = "in_flight"
            case peakInFlight = "peak_in_flight"
            case concurrencyLimit = "concurrency_limit"
            case maxInFlight = "max_in_flight"
            case batchSize = "batch_size"
        }
    }

    /// The scheduler's own state: `idle` (not started), `running`, `stopping`, `stopped`.
    public var state: String
    /// Runs going, oldest first.
    public var running: [SyncRun]
    /// Runs ended, newest first (the last ten by default).
    public var recent: [SyncRun]
    public var totals: Totals
    public var schedule: Schedule
    public var batcher: BatcherLoad
    /// The leader, this instance and the batch stream (see ``CoordinationStatus``).
    public var coordination: CoordinationStatus
}
