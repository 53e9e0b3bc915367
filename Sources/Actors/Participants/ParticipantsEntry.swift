public import Foundation

/// A chat's participants as cached in Redis and in memory, with the time they were fetched.
public struct ParticipantsEntry: Codable, Sendable, Hashable {
    /// The chat these participants belong to (`chat_id`).
    public var chatID: ChatID
    /// The members, in the order upstream sent them.
    public var participants: [Participant]
    /// Upstream's version of the list; a newer fetch carries a higher or equal version.
    public var version: Int64
    /// When the list was fetched from upstream (`fetched_at`). Serialized as an ISO-8601 timestamp
    /// with milliseconds, so precision finer than a millisecond does not survive a round trip.
    public var fetchedAt: Date

    public init(chatID: ChatID, participants: [Participant], version: Int64, fetchedAt: Date) {
        self.chatID = chatID
        self.participants = participants
        self.version = version
        self.fetchedAt = fetchedAt
    }

    /// The entry for a chat that upstream just returned.
    public init(_ chat: UpstreamChat, fetchedAt: Date) {
        self.init(chatID: chat.chatID, participants: chat.participants, version: chat.version, fetchedAt: fetchedAt)
    }

    /// How long ago the entry was fetched; negative if `fetchedAt` lies in the future (clock skew
    /// between instances).
    public func age(at now: Date) -> Duration {
        let milliseconds = (now.timeIntervalSince(fetchedAt) * 1000).rounded()
        // Clamped (about ±285,000 years) so that absurd dates cannot trap the conversion.
        let limit = 9e15
        guard !milliseconds.isNaN else { return .zero }
        return .milliseconds(Int64(max(-limit, min(limit, milliseconds))))
    }

    /// Whether the entry is older than `threshold` and should be refreshed after being served.
    public func isStale(at now: Date, threshold: Duration) -> Bool {
        age(at: now) > threshold
    }

    enum CodingKeys: String, CodingKey {
        case chatID = "chat_id"
        case participants
        case version
        case fetchedAt = "fetched_at"
    }

    /// Reads `fetched_at` as an ISO-8601 string whatever the decoder's date strategy, so every
    /// decoder agrees with ``EntryCodec``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        chatID = try container.decode(ChatID.self, forKey: .chatID)
        participants = try container.decode([Participant].self, forKey: .participants)
        version = try container.decodeInt64(forKey: .version)
        let timestamp = try container.decode(String.self, forKey: .fetchedAt)
        guard let date = ISO8601Timestamp.date(from: timestamp) else {
            throw DecodingError.dataCorruptedError(
                forKey: .fetchedAt, in: container,
                debugDescription:
                    "expected an ISO-8601 timestamp, found \(String(reflecting: String(timestamp.prefix(64))))"
            )
        }
        fetchedAt = date
    }

    /// Writes `fetched_at` as an ISO-8601 string whatever the encoder's date strategy.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(chatID, forKey: .chatID)
        try container.encode(participants, forKey: .participants)
        try container.encode(version, forKey: .version)
        try container.encode(ISO8601Timestamp.string(from: fetchedAt), forKey: .fetchedAt)
    }
}
