import ChatRuntime

/// One stream entry as Redis returned it.
struct StreamEntry: Sendable, Hashable {
    var id: String
    var fields: [String: String]
}

/// Reads the replies of the stream commands the coordination uses. Pure, unit-tested.
enum StreamReplies {
    /// `XREADGROUP ... STREAMS key >`: `[[key, [[id, [field, value, ...]], ...]]]`, or nil when
    /// nothing is new.
    static func entries(fromRead reply: RESPValue) -> [StreamEntry] {
        guard let streams = reply.array else { return [] }
        return streams.flatMap { stream -> [StreamEntry] in
            guard let parts = stream.array, parts.count == 2, let entries = parts[1].array else { return [] }
            return entries.compactMap(entry)
        }
    }

    /// What `XAUTOCLAIM` returned.
    struct Claim: Sendable, Hashable {
        /// Where the next scan of the pending entries list starts; `0-0` when it went round.
        var cursor: String
        var entries: [StreamEntry]
        /// Pending entries that no longer exist (trimmed away before anyone processed them).
        var deleted: [String]
    }

    /// `XAUTOCLAIM`: `[cursor, [[id, fields] | nil, ...], [deleted ids]]` (the third element
    /// since Redis 7; before, deleted entries came back as nil fields).
    static func claim(_ reply: RESPValue) -> Claim? {
        guard let parts = reply.array, parts.count >= 2, let cursor = parts[0].string, let rows = parts[1].array else {
            return nil
        }
        var entries: [StreamEntry] = []
        var deleted: [String] = []
        for row in rows {
            if let entry = entry(row) {
                entries.append(entry)
            } else if let pair = row.array, let id = pair.first?.string {
                deleted.append(id)
            }
        }
        if parts.count >= 3, let gone = parts[2].array {
            deleted += gone.compactMap(\.string)
        }
        return Claim(cursor: cursor, entries: entries, deleted: deleted)
    }

    /// One `[id, [field, value, ...]]`; nil for a deleted entry (nil fields).
    static func entry(_ value: RESPValue) -> StreamEntry? {
        guard let pair = value.array, pair.count == 2, let id = pair[0].string, let flat = pair[1].array else {
            return nil
        }
        return StreamEntry(id: id, fields: dictionary(flat))
    }

    /// `[field, value, field, value, ...]` as a dictionary of strings (non-string values are
    /// kept in their RESP rendering, for numbers).
    static func dictionary(_ flat: [RESPValue]) -> [String: String] {
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < flat.count {
            if let name = flat[index].string {
                fields[name] = text(flat[index + 1])
            }
            index += 2
        }
        return fields
    }

    /// A reply element as text: strings as they are, integers in decimal, nil as nil.
    static func text(_ value: RESPValue) -> String? {
        switch value {
        case .integer(let number): String(number)
        case .simpleString, .bulkString: value.string
        default: nil
        }
    }

    /// The consumer group's line of `XINFO GROUPS key`.
    struct GroupInfo: Sendable, Hashable {
        var consumers: Int
        var pending: Int
        var lastDeliveredID: String?
        /// Entries not yet delivered to any consumer (Redis 7); nil when Redis cannot tell.
        var lag: Int?
    }

    static func group(named name: String, in reply: RESPValue) -> GroupInfo? {
        guard let groups = reply.array else { return nil }
        for group in groups {
            guard let flat = group.array else { continue }
            let fields = dictionary(flat)
            guard fields["name"] == name else { continue }
            return GroupInfo(
                consumers: fields["consumers"].flatMap { Int($0) } ?? 0,
                pending: fields["pending"].flatMap { Int($0) } ?? 0,
                lastDeliveredID: fields["last-delivered-id"],
                lag: fields["lag"].flatMap { Int($0) })
        }
        return nil
    }

    /// One consumer's line of `XINFO CONSUMERS key group`.
    struct ConsumerInfo: Sendable, Hashable {
        var name: String
        var pending: Int
        /// Milliseconds since the consumer last read or claimed.
        var idleMilliseconds: Int64
    }

    static func consumers(_ reply: RESPValue) -> [ConsumerInfo] {
        (reply.array ?? []).compactMap { consumer in
            guard let flat = consumer.array else { return nil }
            let fields = dictionary(flat)
            guard let name = fields["name"] else { return nil }
            return ConsumerInfo(
                name: name, pending: fields["pending"].flatMap { Int($0) } ?? 0,
                idleMilliseconds: fields["idle"].flatMap { Int64($0) } ?? 0)
        }
    }

    /// `XPENDING key group` (summary form): `[count, smallest id, largest id, [[consumer, count], ...]]`.
    static func pendingByConsumer(_ reply: RESPValue) -> (total: Int, byConsumer: [String: Int])? {
        guard let parts = reply.array, parts.count == 4, let total = parts[0].int else { return nil }
        var byConsumer: [String: Int] = [:]
        for row in parts[3].array ?? [] {
            guard let pair = row.array, pair.count == 2, let name = pair[0].string, let count = pair[1].int else {
                continue
            }
            byConsumer[name] = Int(count)
        }
        return (Int(total), byConsumer)
    }
}
