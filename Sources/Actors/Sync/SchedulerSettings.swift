public import Foundation

extension Scheduler {
    /// How the scheduler plans its runs. The defaults are DESIGN §3's.
    public struct Settings: Sendable, Hashable {
        /// PARTICIPANTS_UPDATE_INTERVAL: the period of interval runs.
        public var updateInterval: Duration = .seconds(15 * 60)
        /// Interval runs start `updateInterval` ± this fraction of it apart (0...1), at random.
        public var intervalJitter: Double = 0.1
        /// PARTICIPANTS_FULL_UPDATE_HOUR: the local hour (0...23) of the daily full run.
        public var fullUpdateHour: Int = 3
        /// PARTICIPANTS_TIMEZONE: the time zone of `fullUpdateHour`.
        public var timeZone: TimeZone = TimeZone(identifier: "UTC")!
        /// PARTICIPANTS_BATCH_SIZE: chats per upstream batch call and per Redis pipeline.
        public var batchSize: Int = 50
        /// PARTICIPANTS_MAX_BATCHES_IN_FLIGHT: the ceiling of the batcher's adaptive limit (for
        /// the status route; the batcher has its own copy).
        public var maxBatchesInFlight: Int = 64
        /// PARTICIPANTS_STALE_THRESHOLD: an interval run refreshes chats at least this old at the
        /// time the next interval run may start.
        public var staleThreshold: Duration = .seconds(60 * 60)
        /// Chats read within this window are tracked and kept fresh by interval runs.
        public var trackWindow: Duration = .seconds(24 * 60 * 60)
        /// Tracked chats whose fetch times are read from the store at once.
        public var selectionChunkSize: Int = 1000
        /// Run interval runs (PARTICIPANTS_ENABLE_BACKGROUND_SYNC switches the whole scheduler).
        public var intervalRunsEnabled = true
        /// Run the daily full run. Manual full runs are always possible.
        public var fullRunsEnabled = true
        /// Run a catch-up run when Redis comes back.
        public var catchUpRunsEnabled = true
        /// Retries of a failed chat-list page before the full run fails.
        public var pageRetries: Int = 3
        /// The wait between page retries (on the sync clock).
        public var pageBackoff = Backoff(initial: .seconds(1), maximum: .seconds(30))
        /// Ended runs kept for the status route.
        public var historyLimit: Int = 10
        /// Errors kept per run.
        public var errorLimit: Int = 20

        public init() {}

        /// The page size asked of upstream's chat list, at most: by default the contract's
        /// largest (1000, docs/UPSTREAM.md). The producer asks for at most one append script's
        /// worth of batches (16 × PARTICIPANTS_BATCH_SIZE: 800 chats with the defaults).
        public var pageSize: Int = 1000

        func validate() {
            precondition(updateInterval > .zero, "updateInterval must be positive")
            precondition((0...1).contains(intervalJitter), "intervalJitter must be within 0...1")
            precondition((0...23).contains(fullUpdateHour), "fullUpdateHour must be within 0...23")
            precondition(batchSize >= 1, "batchSize must be at least 1")
            precondition(maxBatchesInFlight >= 1, "maxBatchesInFlight must be at least 1")
            precondition(staleThreshold >= .zero, "staleThreshold must not be negative")
            precondition(trackWindow > .zero, "trackWindow must be positive")
            precondition(selectionChunkSize >= 1, "selectionChunkSize must be at least 1")
            precondition(pageRetries >= 0, "pageRetries must not be negative")
            precondition(historyLimit >= 1 && errorLimit >= 1, "limits must be at least 1")
        }
    }
}
