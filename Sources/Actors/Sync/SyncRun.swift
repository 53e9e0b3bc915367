public import Foundation

/// A sync run's identifier: `<kind>-<UTC start, basic ISO 8601>-<4 hex digits>`, e.g.
/// `full-20261125T030000Z-ab12`. Readable in logs and sortable by start within a kind; the random
/// suffix tells apart two runs started in the same second.
public struct RunID: Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// The identifier of a run of `kind` started at `startedAt`, with a suffix drawn from `random`.
    public init(kind: SyncRun.Kind, startedAt: Date, random: inout some RandomNumberGenerator) {
        let timestamp = ISO8601Timestamp.string(from: startedAt) // 2026-11-25T03:00:00.000Z
        let compact = timestamp.prefix(19).filter { $0 != "-" && $0 != ":" } + "Z"
        let suffix = String(UInt16.random(in: 0...UInt16.max, using: &random), radix: 16)
        let padded = String(repeating: "0", count: 4 - suffix.count) + suffix
        rawValue = "\(kind.idPrefix)-\(compact)-\(padded)"
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// One sync run: what started it, how far it got, what went wrong. A snapshot; the scheduler
/// holds the live record.
///
/// Encoded (for `GET /internal/participants/status`) with snake_case keys and ISO 8601 dates
/// whatever the encoder's date strategy.
public struct SyncRun: Sendable, Hashable, Encodable {
    /// Why the run exists.
    public enum Kind: String, Sendable, Hashable, Encodable, CaseIterable {
        /// Every PARTICIPANTS_UPDATE_INTERVAL: tracked chats that are or will soon be stale.
        case interval
        /// Daily at PARTICIPANTS_FULL_UPDATE_HOUR: every chat upstream lists.
        case full
        /// After Redis comes back: an interval-style run right away.
        case catchUp = "catch_up"
        /// `POST /internal/participants/refresh`: a full run on request.
        case manualFull = "manual_full"

        /// Whether the run enumerates upstream's whole chat list.
        public var isFull: Bool { self == .full || self == .manualFull }

        var idPrefix: String {
            switch self {
            case .interval: "interval"
            case .full: "full"
            case .catchUp: "catchup"
            case .manualFull: "manual"
            }
        }
    }

    public enum State: String, Sendable, Hashable, Encodable {
        /// Recorded, waiting for a leader to produce it (or, on this instance, for Redis to come
        /// back so the request can be handed over).
        case queued
        case running
        /// Every planned batch was processed; some chats may still have failed (see the counts).
        case completed
        /// Listing upstream's chats failed after retries, or every batch failed.
        case failed
        /// Shutdown stopped it; batches it could not process are counted as skipped.
        case cancelled
    }

    /// Progress. When a run has ended, `batchesPlanned == batchesDone + batchesFailed +
    /// batchesSkipped` and `chatsPlanned == chatsRefreshed + chatsNotFound + chatsFailed +
    /// chatsSkipped`: no batch or chat is lost from the accounting.
    public struct Counts: Sendable, Hashable, Encodable {
        /// Interval and catch-up runs: tracked chats looked at. Full runs: chat ids listed so far.
        public var chatsConsidered = 0
        /// Chats handed to the batcher (for a full run this grows as pages arrive).
        public var chatsPlanned = 0
        /// Fetched and stored (or kept for write-back, see `batchesDeferred`).
        public var chatsRefreshed = 0
        /// Upstream does not know them; stored as not found.
        public var chatsNotFound = 0
        /// Their batch failed upstream, upstream sent them malformed, or left them out of its answer.
        public var chatsFailed = 0
        /// Never processed: shutdown came first.
        public var chatsSkipped = 0
        /// Batches handed to the batcher.
        public var batchesPlanned = 0
        /// Batches whose answer was stored, written to Redis or deferred.
        public var batchesDone = 0
        /// Of `batchesDone`, those kept in the write-back buffer because Redis was not ready.
        public var batchesDeferred = 0
        /// Batches whose upstream call failed; nothing of them was written.
        public var batchesFailed = 0
        /// Batches dropped unprocessed at shutdown.
        public var batchesSkipped = 0
        /// Full runs: strings in upstream's chat list that are not valid chat ids.
        public var idsRejected = 0

        public init() {}

        /// Batches whose fate is known.
        public var batchesSettled: Int { batchesDone + batchesFailed + batchesSkipped }

        enum CodingKeys: String, CodingKey {
            case chatsConsidered = "chats_considered"
            case chatsPlanned = "chats_planned"
            case chatsRefreshed = "chats_refreshed"
            case chatsNotFound = "chats_not_found"
            case chatsFailed = "chats_failed"
            case chatsSkipped = "chats_skipped"
            case batchesPlanned = "batches_planned"
            case batchesDone = "batches_done"
            case batchesDeferred = "batches_deferred"
            case batchesFailed = "batches_failed"
            case batchesSkipped = "batches_skipped"
            case idsRejected = "ids_rejected"
        }
    }

    /// Something that went wrong during the run, kept for the status route.
    public struct ErrorRecord: Sendable, Hashable, Encodable {
        public var at: Date
        public var message: String

        public init(at: Date, message: String) {
            self.at = at
            self.message = message
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(ISO8601Timestamp.string(from: at), forKey: .at)
            try container.encode(message, forKey: .message)
        }

        enum CodingKeys: String, CodingKey {
            case at, message
        }
    }

    public var id: RunID
    public var kind: Kind
    /// What asked for it: `schedule`, `redis_ready`, or the caller's words for a manual run.
    public var trigger: String
    public var state: State
    public var startedAt: Date
    public var finishedAt: Date?
    public var counts: Counts
    /// Full runs: pages of upstream's chat list read so far; nil for other kinds.
    public var pagesRead: Int?
    /// The most recent errors, oldest first; bounded, see `errorsTotal`.
    public var errors: [ErrorRecord]
    /// Every error recorded, including those no longer in `errors`.
    public var errorsTotal: Int
    /// Why a failed run failed.
    public var failure: String?
    /// Requests that found this run going and joined it instead of starting another.
    public var joinedRequests: Int
    /// Shared runs: the fencing token of the leader producing (or last producing) it.
    public var fence: Int64?
    /// Shared runs: the instance producing (or last producing) it.
    public var leader: String?
    /// Shared runs: how often a new leader took the run over from an earlier one.
    public var adoptions: Int?

    public init(id: RunID, kind: Kind, trigger: String, startedAt: Date) {
        self.id = id
        self.kind = kind
        self.trigger = trigger
        self.state = .running
        self.startedAt = startedAt
        self.finishedAt = nil
        self.counts = Counts()
        self.pagesRead = kind.isFull ? 0 : nil
        self.errors = []
        self.errorsTotal = 0
        self.failure = nil
        self.joinedRequests = 0
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, trigger, state, counts, failure
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case durationSeconds = "duration_seconds"
        case pagesRead = "pages_read"
        case errors
        case errorsTotal = "errors_total"
        case joinedRequests = "joined_requests"
        case fence, leader, adoptions
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(kind, forKey: .kind)
        try container.encode(trigger, forKey: .trigger)
        try container.encode(state, forKey: .state)
        try container.encode(ISO8601Timestamp.string(from: startedAt), forKey: .startedAt)
        try container.encode(finishedAt.map(ISO8601Timestamp.string(from:)), forKey: .finishedAt)
        try container.encode(finishedAt.map { max(0, $0.timeIntervalSince(startedAt)) }, forKey: .durationSeconds)
        try container.encode(counts, forKey: .counts)
        try container.encode(pagesRead, forKey: .pagesRead)
        try container.encode(errors, forKey: .errors)
        try container.encode(errorsTotal, forKey: .errorsTotal)
        try container.encode(failure, forKey: .failure)
        try container.encode(joinedRequests, forKey: .joinedRequests)
        try container.encodeIfPresent(fence, forKey: .fence)
        try container.encodeIfPresent(leader, forKey: .leader)
        try container.encodeIfPresent(adoptions, forKey: .adoptions)
    }
}
