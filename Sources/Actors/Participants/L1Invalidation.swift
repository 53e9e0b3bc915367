public import ChatRuntime
public import Foundation

/// One entry of the invalidation stream: an instance wrote these chats' entries to Redis,
/// fetched at these times. Other instances evict older L1 copies of them.
public struct L1Invalidation: Sendable, Hashable {
    /// One written entry: its chat and `fetched_at`.
    public struct Written: Sendable, Hashable {
        public var chat: ChatID
        public var fetchedAt: Date

        public init(chat: ChatID, fetchedAt: Date) {
            self.chat = chat
            self.fetchedAt = fetchedAt
        }
    }

    /// The stream entry id.
    public var id: RedisStreamID
    /// The instance that wrote the entries.
    public var instanceID: String
    /// What was written.
    public var written: [Written]

    public init(id: RedisStreamID, instanceID: String, written: [Written]) {
        self.id = id
        self.instanceID = instanceID
        self.written = written
    }

    /// The field naming the writer. `@` cannot occur in a chat id, so it never collides with one.
    static let instanceField = "@instance"

    /// `XADD <stream> MAXLEN ~ <max> * @instance <id> <chat> <fetched_at> ...` for written entries.
    public static func publishCommand(
        instanceID: String, entries: [ParticipantsEntry], maxLength: Int
    ) -> RedisCommand {
        var arguments = [
            ParticipantsKeys.invalidations, "MAXLEN", "~", String(maxLength), "*", instanceField, instanceID,
        ]
        arguments.reserveCapacity(arguments.count + 2 * entries.count)
        for entry in entries {
            arguments.append(entry.chatID.rawValue)
            arguments.append(ISO8601Timestamp.string(from: entry.fetchedAt))
        }
        return RedisCommand("XADD", arguments)
    }

    /// The entries of an `XREAD ... STREAMS <stream> <id>` reply (nil reply: none). Pairs that
    /// are not a valid chat id and timestamp are skipped; an entry without `@instance` counts as
    /// another instance's.
    public static func parseReadReply(_ reply: RESPValue) -> [L1Invalidation] {
        guard let streams = reply.array else { return [] }
        var result: [L1Invalidation] = []
        for stream in streams {
            guard let parts = stream.array, parts.count == 2, let entries = parts[1].array else { continue }
            for entry in entries {
                if let parsed = parseEntry(entry) { result.append(parsed) }
            }
        }
        return result
    }

    /// One `[id, [field, value, ...]]` stream entry, as `XREAD` and `XRANGE` return it.
    public static func parseEntry(_ entry: RESPValue) -> L1Invalidation? {
        guard let parts = entry.array, parts.count == 2, let idText = parts[0].string, let id = RedisStreamID(idText)
        else {
            return nil
        }
        let fields = parts[1].array ?? []
        var instanceID = ""
        var written: [Written] = []
        var index = 0
        while index + 1 < fields.count {
            defer { index += 2 }
            guard let field = fields[index].string, let value = fields[index + 1].string else { continue }
            if field == instanceField {
                instanceID = value
            } else if let chat = ChatID(validating: field), let fetchedAt = ISO8601Timestamp.date(from: value) {
                written.append(Written(chat: chat, fetchedAt: fetchedAt))
            }
        }
        return L1Invalidation(id: id, instanceID: instanceID, written: written)
    }
}

/// Where to resume reading the invalidation stream after (re)connecting, and whether entries
/// may have been missed, in which case L1 entries fetched before the outage must go.
public struct InvalidationResumePoint: Sendable, Hashable {
    /// Read entries after this id.
    public var after: RedisStreamID
    /// Entries this instance never read may be gone: the stream lost them (a Redis restart
    /// without persistence, a failover to a replica that lacked them) or trimmed them.
    public var mayHaveMissedEntries: Bool

    public init(after: RedisStreamID, mayHaveMissedEntries: Bool) {
        self.after = after
        self.mayHaveMissedEntries = mayHaveMissedEntries
    }

    /// The decision, from the last id read before (nil: never positioned) and the stream's
    /// first and last ids now (nil: empty or missing).
    public static func decide(lastSeen: RedisStreamID?, first: RedisStreamID?, last: RedisStreamID?)
        -> InvalidationResumePoint
    {
        guard let lastSeen else {
            // First start: nothing in L1 predates this instance's own reads; history is skipped.
            return InvalidationResumePoint(after: last ?? .zero, mayHaveMissedEntries: false)
        }
        guard let first, let last else {
            // Empty: lost if this instance had read entries before (MAXLEN ~ never trims to zero).
            return InvalidationResumePoint(after: .zero, mayHaveMissedEntries: lastSeen != .zero)
        }
        if last < lastSeen {
            // The stream went back in time: it is another history (a promoted replica behind us).
            return InvalidationResumePoint(after: last, mayHaveMissedEntries: true)
        }
        // Entries between lastSeen and first were trimmed away (or the stream was recreated).
        let trimmed = lastSeen != .zero && first > lastSeen
        return InvalidationResumePoint(after: lastSeen, mayHaveMissedEntries: trimmed)
    }
}

extension Date {
    /// The instant as Redis keeps `fetched_at`: whole milliseconds, rounded to the nearest (as
    /// ``ISO8601Timestamp`` writes them). Copies fetched here are finer; comparing at this
    /// precision keeps a copy and its stored form equal.
    var storedMilliseconds: Int64 {
        Int64((timeIntervalSince1970 * 1000).rounded())
    }
}
