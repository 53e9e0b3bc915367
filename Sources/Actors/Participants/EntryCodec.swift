import Foundation

/// Serializes ``ParticipantsEntry`` for Redis and for HTTP responses.
///
/// Both encoders write JSON by hand into one byte buffer because they run on every read. The
/// Redis form is `{"chat_id","participants","version","fetched_at"}`; the response form adds
/// `"stale"` and `"source"`. Keys always come in this order.
public enum EntryCodec {
    /// The JSON stored under ``ChatID/redisKey``.
    public static func encodeForRedis(_ entry: ParticipantsEntry) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: estimatedSize(of: entry))
        writeFields(of: entry, to: &writer)
        writer.appendRaw(ascii: UInt8(ascii: "}"))
        return writer.bytes
    }

    /// Reads an entry written by ``encodeForRedis(_:)``. Any malformed, truncated or foreign
    /// content is reported, never half-read. Unknown keys are ignored.
    public static func decodeFromRedis(_ bytes: [UInt8]) throws(EntryDecodingError) -> ParticipantsEntry {
        do {
            return try EntryParser.parse(bytes)
        } catch {
            throw EntryDecodingError(error)
        }
    }

    /// The body of `GET /v1/chats/{chat_id}/participants`.
    public static func encodeResponse(_ entry: ParticipantsEntry, stale: Bool, source: ReadSource) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: estimatedSize(of: entry) + 40)
        writeFields(of: entry, to: &writer)
        writer.appendRaw(#","stale":"#)
        writer.appendBool(stale)
        writer.appendRaw(#","source":"#)
        switch source {
        case .cache: writer.appendRaw(#""cache""#)
        case .upstream: writer.appendRaw(#""upstream""#)
        case .memory: writer.appendRaw(#""memory""#)
        }
        writer.appendRaw(ascii: UInt8(ascii: "}"))
        return writer.bytes
    }

    /// Writes everything up to, but not including, the closing brace.
    private static func writeFields(of entry: ParticipantsEntry, to writer: inout JSONWriter) {
        writer.appendRaw(#"{"chat_id":"#)
        writer.appendString(entry.chatID.rawValue)
        writer.appendRaw(#","participants":["#)
        for (index, participant) in entry.participants.enumerated() {
            if index > 0 {
                writer.appendRaw(ascii: UInt8(ascii: ","))
            }
            writer.appendRaw(#"{"user_id":"#)
            writer.appendString(participant.userID)
            writer.appendRaw(#","display_name":"#)
            writer.appendString(participant.displayName)
            writer.appendRaw(#","avatar_url":"#)
            writer.appendString(orNull: participant.avatarURL)
            writer.appendRaw(#","role":"#)
            writer.appendString(participant.role)
            writer.appendRaw(ascii: UInt8(ascii: "}"))
        }
        writer.appendRaw(#"],"version":"#)
        writer.appendInteger(entry.version)
        writer.appendRaw(#","fetched_at":"#)
        writer.appendTimestamp(entry.fetchedAt)
    }

    /// Enough for the common case (nothing to escape) so the buffer grows at most once.
    private static func estimatedSize(of entry: ParticipantsEntry) -> Int {
        var size = 96 + entry.chatID.rawValue.utf8.count
        for participant in entry.participants {
            size += 64 + participant.userID.utf8.count + participant.displayName.utf8.count
                + (participant.avatarURL?.utf8.count ?? 0) + participant.role.utf8.count
        }
        return size
    }
}
