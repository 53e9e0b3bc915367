import ChatRuntime
import Foundation

/// Serializes ``ParticipantsEntry`` for Redis and for HTTP responses.
///
/// Both forms are written by hand into one byte array because they run for every entry a sync
/// writes and every response a read encodes. When no string needs escaping (nearly always) the
/// output size is known up front and the bytes go through a ``ByteArrayWriter``, one allocation
/// and plain copies, about three times faster than appending to an array (docs/PERFORMANCE.md);
/// otherwise a ``JSONWriter`` escapes. The Redis form is `{"chat_id","participants","version","fetched_at"}`;
/// the response form adds `"stale"` and `"source"`. Keys always come in this order, strings are
/// escaped as ``JSONWriter`` escapes them.
public enum EntryCodec {
    /// The JSON stored under ``ChatID/redisKey``.
    public static func encodeForRedis(_ entry: ParticipantsEntry) -> [UInt8] {
        encode(entry, closing: "}")
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
        encode(entry, closing: responseClosing(stale: stale, source: source))
    }

    private static func responseClosing(stale: Bool, source: ReadSource) -> StaticString {
        switch (stale, source) {
        case (false, .cache): #","stale":false,"source":"cache"}"#
        case (false, .upstream): #","stale":false,"source":"upstream"}"#
        case (false, .memory): #","stale":false,"source":"memory"}"#
        case (true, .cache): #","stale":true,"source":"cache"}"#
        case (true, .upstream): #","stale":true,"source":"upstream"}"#
        case (true, .memory): #","stale":true,"source":"memory"}"#
        }
    }

    // The literals between the values, in writing order.
    private static let openChatID: StaticString = #"{"chat_id":"#
    private static let openParticipants: StaticString = #","participants":["#
    private static let openUserID: StaticString = #"{"user_id":"#
    private static let openDisplayName: StaticString = #","display_name":"#
    private static let openAvatarURL: StaticString = #","avatar_url":"#
    private static let openRole: StaticString = #","role":"#
    private static let null: StaticString = "null"
    private static let openVersion: StaticString = #"],"version":"#
    private static let openFetchedAt: StaticString = #","fetched_at":"#

    private static func encode(_ entry: ParticipantsEntry, closing: StaticString) -> [UInt8] {
        // Sized for the common case, no string to escape: one allocation, plain copies. A string
        // that needs escaping sends the whole entry to the escaping writer instead.
        var plain = false
        let bytes = ByteArrayWriter.makeArray(capacity: plainFieldsCount(of: entry) + closing.utf8CodeUnitCount) {
            writer in
            plain = writePlainFields(of: entry, to: &writer)
            if plain { writer.append(closing) }
        }
        if plain { return bytes }
        var writer = JSONWriter(reservingCapacity: bytes.capacity + 64)
        writeFields(of: entry, to: &writer)
        writer.appendRaw(closing)
        return writer.bytes
    }

    /// The exact length of what ``writePlainFields(of:to:)`` writes when no string needs escaping.
    private static func plainFieldsCount(of entry: ParticipantsEntry) -> Int {
        var count =
            openChatID.utf8CodeUnitCount + JSONEscaping.plainQuotedCount(entry.chatID.rawValue)
            + openParticipants.utf8CodeUnitCount + max(0, entry.participants.count - 1)
            + openVersion.utf8CodeUnitCount + JSONEscaping.decimalCount(entry.version)
            + openFetchedAt.utf8CodeUnitCount + ISO8601Timestamp.length + 2
        let perParticipant =
            openUserID.utf8CodeUnitCount + openDisplayName.utf8CodeUnitCount
            + openAvatarURL.utf8CodeUnitCount + openRole.utf8CodeUnitCount + 1
        for participant in entry.participants {
            count +=
                perParticipant + JSONEscaping.plainQuotedCount(participant.userID)
                + JSONEscaping.plainQuotedCount(participant.displayName)
                + JSONEscaping.plainQuotedCount(participant.role)
                + (participant.avatarURL.map(JSONEscaping.plainQuotedCount) ?? null.utf8CodeUnitCount)
        }
        return count
    }

    /// Writes everything up to, but not including, the closing brace; false (and a partial
    /// output to throw away) as soon as a string needs escaping.
    private static func writePlainFields(of entry: ParticipantsEntry, to writer: inout ByteArrayWriter) -> Bool {
        writer.append(openChatID)
        guard JSONEscaping.writePlainQuoted(entry.chatID.rawValue, to: &writer) else { return false }
        writer.append(openParticipants)
        var isFirst = true
        for participant in entry.participants {
            if !isFirst { writer.append(UInt8(ascii: ",")) }
            isFirst = false
            writer.append(openUserID)
            guard JSONEscaping.writePlainQuoted(participant.userID, to: &writer) else { return false }
            writer.append(openDisplayName)
            guard JSONEscaping.writePlainQuoted(participant.displayName, to: &writer) else { return false }
            writer.append(openAvatarURL)
            if let avatarURL = participant.avatarURL {
                guard JSONEscaping.writePlainQuoted(avatarURL, to: &writer) else { return false }
            } else {
                writer.append(null)
            }
            writer.append(openRole)
            guard JSONEscaping.writePlainQuoted(participant.role, to: &writer) else { return false }
            writer.append(UInt8(ascii: "}"))
        }
        writer.append(openVersion)
        JSONEscaping.writeInteger(entry.version, to: &writer)
        writer.append(openFetchedAt)
        writer.append(UInt8(ascii: "\""))
        ISO8601Timestamp.write(entry.fetchedAt, to: &writer)
        writer.append(UInt8(ascii: "\""))
        return true
    }

    /// The same fields, escaping what needs it, into a growing buffer: the rare path.
    private static func writeFields(of entry: ParticipantsEntry, to writer: inout JSONWriter) {
        writer.appendRaw(openChatID)
        writer.appendString(entry.chatID.rawValue)
        writer.appendRaw(openParticipants)
        for (index, participant) in entry.participants.enumerated() {
            if index > 0 { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            writer.appendRaw(openUserID)
            writer.appendString(participant.userID)
            writer.appendRaw(openDisplayName)
            writer.appendString(participant.displayName)
            writer.appendRaw(openAvatarURL)
            writer.appendString(orNull: participant.avatarURL)
            writer.appendRaw(openRole)
            writer.appendString(participant.role)
            writer.appendRaw(ascii: UInt8(ascii: "}"))
        }
        writer.appendRaw(openVersion)
        writer.appendInteger(entry.version)
        writer.appendRaw(openFetchedAt)
        writer.appendTimestamp(entry.fetchedAt)
    }
}
