import ChatRuntime
public import Foundation

/// A chat's participants as cached in Redis and in memory, with the time they were fetched.
///
/// An entry is held in its one stored form (``stored``): the exact bytes written to Redis, kept
/// in the L1 and sent as the response body (between a small per-answer suffix, see
/// ``EntryCodec``). The fields a caller needs often (``chatID``, ``version``, ``fetchedAt``) sit
/// beside it; the members are decoded from it only when asked for (``participants``: membership
/// checks, the gRPC mapping). A sync thus never turns upstream's JSON into one heap string per
/// field, and a cached chat costs its stored bytes and little more.
///
/// ``stored`` is always the compact form ``EntryCodec`` writes for the fields, keys in the order
/// `chat_id, participants, version, fetched_at` (`fetched_at` last, as the write-if-newer script
/// expects); so two entries are equal exactly when their stored forms are.
public struct ParticipantsEntry: Codable, Sendable, Hashable {
    /// The chat these participants belong to (`chat_id`).
    public let chatID: ChatID
    /// Upstream's version of the list; a newer fetch carries a higher or equal version.
    public let version: Int64
    /// When the list was fetched from upstream (`fetched_at`). Serialized as an ISO-8601 timestamp
    /// with milliseconds, so precision finer than a millisecond does not survive a round trip.
    public let fetchedAt: Date
    /// The entry as stored in Redis: `{"chat_id":…,"participants":[…],"version":…,"fetched_at":…}`.
    public let stored: [UInt8]
    /// ``stored`` compressed, for the L1 (``CompressedEntry``), when whoever made the entry
    /// compressed it already: an entry fetched from upstream is compressed where it is made (the
    /// sync's batches off the event loop), so that the loop only shares the block. Not part of
    /// the entry's value (equality, hashing, coding).
    let compressedStored: LZ4Block?

    /// Encodes the fields into the stored form.
    public init(chatID: ChatID, participants: [Participant], version: Int64, fetchedAt: Date) {
        self.init(
            chatID: chatID, participantsJSON: EntryCodec.participantsJSON(participants), version: version,
            fetchedAt: fetchedAt)
    }

    /// The entry for a chat that upstream just returned: its members are copied as the compact
    /// JSON the upstream parser already wrote, not decoded.
    /// The stored form is compressed here too, for the L1, since such an entry is nearly always
    /// kept there.
    public init(_ chat: UpstreamChat, fetchedAt: Date) {
        self.init(
            chatID: chat.chatID, participantsJSON: chat.participantsJSON, version: chat.version, fetchedAt: fetchedAt,
            compress: true)
    }

    private init(chatID: ChatID, participantsJSON: [UInt8], version: Int64, fetchedAt: Date, compress: Bool = false) {
        let stored = EntryCodec.assemble(
            chatID: chatID, participantsJSON: participantsJSON, version: version, fetchedAt: fetchedAt)
        self.init(
            chatID: chatID, version: version, fetchedAt: fetchedAt, stored: stored,
            compressedStored: compress ? LZ4Block(compressing: stored) : nil)
    }

    /// An entry whose stored form the caller has built or checked to be the one the fields give,
    /// and `compressedStored`, if given, is that stored form compressed.
    init(chatID: ChatID, version: Int64, fetchedAt: Date, stored: [UInt8], compressedStored: LZ4Block? = nil) {
        self.chatID = chatID
        self.version = version
        self.fetchedAt = fetchedAt
        self.stored = stored
        self.compressedStored = compressedStored
    }

    /// The members, in the order upstream sent them, decoded from ``stored`` on each call.
    public var participants: [Participant] {
        do {
            return try EntryParser.fields(of: stored).participants
        } catch {
            // Unreachable: `stored` is only ever written by EntryCodec or checked by EntryParser.
            assertionFailure("a stored entry did not decode: \(error)")
            return []
        }
    }

    /// How long ago the entry was fetched; negative if `fetchedAt` lies in the future (clock skew
    /// between instances).
    public func age(at now: Date) -> Duration {
        Self.age(fetchedAt: fetchedAt, at: now)
    }

    /// How long ago `fetchedAt` was, as ``age(at:)`` measures it.
    static func age(fetchedAt: Date, at now: Date) -> Duration {
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

    // Equality and hashing: the stored form decides; the cheap fields go first so that unequal
    // entries rarely compare their bytes, and equal ones that share storage compare by identity.
    public static func == (lhs: ParticipantsEntry, rhs: ParticipantsEntry) -> Bool {
        lhs.chatID == rhs.chatID && lhs.version == rhs.version && lhs.fetchedAt == rhs.fetchedAt
            && lhs.stored.hasSameBytes(as: rhs.stored)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(chatID)
        hasher.combine(version)
        hasher.combine(fetchedAt)
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
        let chatID = try container.decode(ChatID.self, forKey: .chatID)
        let participants = try container.decode([Participant].self, forKey: .participants)
        let version = try container.decodeInt64(forKey: .version)
        let timestamp = try container.decode(String.self, forKey: .fetchedAt)
        guard let date = ISO8601Timestamp.date(from: timestamp) else {
            throw DecodingError.dataCorruptedError(
                forKey: .fetchedAt, in: container,
                debugDescription:
                    "expected an ISO-8601 timestamp, found \(String(reflecting: String(timestamp.prefix(64))))"
            )
        }
        self.init(chatID: chatID, participants: participants, version: version, fetchedAt: date)
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
