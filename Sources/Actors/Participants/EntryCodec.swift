import Foundation
import Runtime

/// Serializes ``ParticipantsEntry`` for Redis and for HTTP responses.
///
/// Both forms are written by hand into one byte array because they run for every entry a sync
/// writes and every response a read encodes: the output size is computed first, then the bytes
/// are written with a ``ByteArrayWriter``, about three times faster than appending to an array
/// (docs/PERFORMANCE.md). The Redis form is `{"chat_id","participants","version","fetched_at"}`;
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
        let size = fieldsCount(of: entry) + closing.utf8CodeUnitCount
        return ByteArrayWriter.makeArray(capacity: size) { writer in
            writeFields(of: entry, to: &writer)
            writer.append(closing)
        }
    }

    /// The exact length of what ``writeFields(of:to:)`` writes.
    private static func fieldsCount(of entry: ParticipantsEntry) -> Int {
        var count = openChatID.utf8CodeUnitCount + JSONEscaping.quotedCount(entry.chatID.rawValue)
            + openParticipants.utf8CodeUnitCount + max(0, entry.participants.count - 1)
            + openVersion.utf8CodeUnitCount + JSONEscaping.decimalCount(entry.version)
            + openFetchedAt.utf8CodeUnitCount + ISO8601Timestamp.length + 2
        let perParticipant = openUserID.utf8CodeUnitCount + openDisplayName.utf8CodeUnitCount
            + openAvatarURL.utf8CodeUnitCount + openRole.utf8CodeUnitCount + 1
        for participant in entry.participants {
            count += perParticipant + JSONEscaping.quotedCount(participant.userID)
                + JSONEscaping.quotedCount(participant.displayName) + JSONEscaping.quotedCount(participant.role)
                + (participant.avatarURL.map(JSONEscaping.quotedCount) ?? null.utf8CodeUnitCount)
        }
        return count
    }

    /// Writes everything up to, but not including, the closing brace.
    private static func writeFields(of entry: ParticipantsEntry, to writer: inout ByteArrayWriter) {
        writer.append(openChatID)
        JSONEscaping.writeQuoted(entry.chatID.rawValue, to: &writer)
        writer.append(openParticipants)
        var isFirst = true
        for participant in entry.participants {
            if !isFirst { writer.append(UInt8(ascii: ",")) }
            isFirst = false
            writer.append(openUserID)
            JSONEscaping.writeQuoted(participant.userID, to: &writer)
            writer.append(openDisplayName)
            JSONEscaping.writeQuoted(participant.displayName, to: &writer)
            writer.append(openAvatarURL)
            if let avatarURL = participant.avatarURL {
                JSONEscaping.writeQuoted(avatarURL, to: &writer)
            } else {
                writer.append(null)
            }
            writer.append(openRole)
            JSONEscaping.writeQuoted(participant.role, to: &writer)
            writer.append(UInt8(ascii: "}"))
        }
        writer.append(openVersion)
        JSONEscaping.writeInteger(entry.version, to: &writer)
        writer.append(openFetchedAt)
        writer.append(UInt8(ascii: "\""))
        ISO8601Timestamp.write(entry.fetchedAt, to: &writer)
        writer.append(UInt8(ascii: "\""))
    }
}
