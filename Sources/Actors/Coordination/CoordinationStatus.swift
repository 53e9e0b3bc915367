public import Foundation

/// What `GET /internal/participants/status` shows of the coordination between instances (the
/// `sync.coordination` object): who leads with which fence, this instance, the shared stream and
/// this instance's share of it. Snake_case keys.
public struct CoordinationStatus: Sendable, Hashable, Encodable {
    /// The lock holder as Redis sees it.
    public struct Leader: Sendable, Hashable, Encodable {
        public var instanceID: String
        /// The current fence: the leader's, as every acquisition increments it.
        public var fence: Int64?

        enum CodingKeys: String, CodingKey {
            case instanceID = "instance_id", fence
        }
    }

    /// The batch stream and its consumer group.
    public struct Stream: Sendable, Hashable, Encodable {
        public var key: String
        /// `XLEN`: entries kept, processed ones included (trimmed to about `max_length`).
        public var length: Int
        public var maxLength: Int
        public var groupExists: Bool
        /// Consumers the group knows (dead ones included until deleted).
        public var consumers: Int
        /// Entries not yet delivered to anyone; nil when Redis cannot tell.
        public var lag: Int?
        /// Delivered, not yet acknowledged (`XPENDING`).
        public var pending: Int
        public var lastDeliveredID: String?
        /// Pending entries per consumer (instance id).
        public var pendingByConsumer: [String: Int]

        enum CodingKeys: String, CodingKey {
            case key, length, lag, pending, consumers
            case maxLength = "max_length"
            case groupExists = "group_exists"
            case lastDeliveredID = "last_delivered_id"
            case pendingByConsumer = "pending_by_consumer"
        }
    }

    /// This instance's batcher as a consumer of the stream.
    public struct Consumer: Sendable, Hashable, Encodable {
        /// Read (or claimed) and not yet acknowledged.
        public var held: Int
        public var holdLimit: Int
        /// Processed, waiting for Redis to take the acknowledgement.
        public var unsettled: Int
        public var batchesRead: Int
        /// Taken over from instances that did not acknowledge them in time.
        public var batchesClaimed: Int
        /// Appended by a leader whose fence is older than the current one; processed anyway.
        public var batchesFromOldLeaders: Int
        /// Acknowledged and booked on their run.
        public var batchesSettled: Int
        /// Already acknowledged by another instance when this one finished them.
        public var batchesDuplicate: Int
        /// Pending entries found deleted (trimmed) when claiming: their chats were not refreshed.
        public var batchesLost: Int
        /// Entries that were not batches, acknowledged and dropped.
        public var entriesRejected: Int

        enum CodingKeys: String, CodingKey {
            case held, unsettled
            case holdLimit = "hold_limit"
            case batchesRead = "batches_read"
            case batchesClaimed = "batches_claimed"
            case batchesFromOldLeaders = "batches_from_old_leaders"
            case batchesSettled = "batches_settled"
            case batchesDuplicate = "batches_duplicate"
            case batchesLost = "batches_lost"
            case entriesRejected = "entries_rejected"
        }
    }

    public var instanceID: String
    /// Whether this instance holds a valid lease now.
    public var isLeader: Bool
    /// This instance's fence while it leads.
    public var fence: Int64?
    public var leader: Leader?
    public var lockTTLSeconds: Double
    public var stream: Stream?
    public var consumer: Consumer
    /// Runs this instance is producing (as leader).
    public var producing: [String]
    /// Scheduled instants seen here and not yet claimed (waiting for leadership or Redis).
    public var pendingTicks: [String: Date]
    /// Manual requests kept here while Redis was away, to hand over when it is back.
    public var queuedRequests: [String]
    /// Why `leader` or `stream` could not be read.
    public var redisError: String?

    enum CodingKeys: String, CodingKey {
        case instanceID = "instance_id"
        case isLeader = "is_leader"
        case fence, leader, stream, consumer, producing
        case lockTTLSeconds = "lock_ttl_seconds"
        case pendingTicks = "pending_ticks"
        case queuedRequests = "queued_requests"
        case redisError = "redis_error"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(instanceID, forKey: .instanceID)
        try container.encode(isLeader, forKey: .isLeader)
        try container.encode(fence, forKey: .fence)
        try container.encode(leader, forKey: .leader)
        try container.encode(lockTTLSeconds, forKey: .lockTTLSeconds)
        try container.encode(stream, forKey: .stream)
        try container.encode(consumer, forKey: .consumer)
        try container.encode(producing, forKey: .producing)
        try container.encode(pendingTicks.mapValues(ISO8601Timestamp.string(from:)), forKey: .pendingTicks)
        try container.encode(queuedRequests, forKey: .queuedRequests)
        try container.encode(redisError, forKey: .redisError)
    }
}
