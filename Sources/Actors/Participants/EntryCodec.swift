public import ChatRuntime
import Foundation

/// The stored form of ``ParticipantsEntry`` and the answers made from it.
///
/// The stored form, `{"chat_id","participants","version","fetched_at"}` in that order with no
/// whitespace, is the value under ``ChatID/redisKey`` and the body of
/// `GET /v1/chats/{chat_id}/participants` without its last byte: an answer is the stored bytes,
/// then `"stale"` and `"source"`, then the closing brace. Strings are escaped as ``JSONWriter``
/// escapes them (`"`, `\` and bytes below 0x20, nothing else), so a string token without a
/// backslash is already in this form and is copied as it is.
///
/// Writing is done by hand into one byte array: when no string needs escaping (nearly always)
/// the output size is known up front and the bytes go through a ``ByteArrayWriter``, one
/// allocation and plain copies (docs/PERFORMANCE.md); otherwise a ``JSONWriter`` escapes.
public enum EntryCodec {
    /// The JSON stored under ``ChatID/redisKey``: the entry's stored form, as it is.
    public static func encodeForRedis(_ entry: ParticipantsEntry) -> [UInt8] {
        entry.stored
    }

    /// Reads a stored entry. Any malformed, truncated or foreign content is reported, never
    /// half-read. Bytes already in the stored form (all that this service writes) are kept as
    /// they are, not copied; other valid documents (keys in another order, unknown keys,
    /// whitespace, other escapes) are decoded and written again in the stored form.
    public static func decodeFromRedis(_ bytes: [UInt8]) throws(EntryDecodingError) -> ParticipantsEntry {
        if let entry = EntryParser.storedForm(bytes) { return entry }
        do {
            let fields = try EntryParser.fields(of: bytes)
            return ParticipantsEntry(
                chatID: fields.chatID, participants: fields.participants, version: fields.version,
                fetchedAt: fields.fetchedAt)
        } catch {
            throw EntryDecodingError(error)
        }
    }

    /// The body of `GET /v1/chats/{chat_id}/participants`: the stored bytes with `stale` and
    /// `source` added before the closing brace, one allocation and one copy.
    public static func encodeResponse(_ entry: ParticipantsEntry, stale: Bool, source: ReadSource) -> [UInt8] {
        let closing = responseClosing(stale: stale, source: source)
        let stored = entry.stored
        return stored.withUnsafeBufferPointer { bytes in
            // The stored form always ends in its closing brace, which the answer replaces.
            let kept = UnsafeBufferPointer(rebasing: bytes.dropLast())
            return ByteArrayWriter.makeArray(capacity: kept.count + closing.utf8CodeUnitCount) { writer in
                writer.append(kept)
                writer.append(closing)
            }
        }
    }

    /// The same body from an L1 entry: its stored form is decompressed straight into the body,
    /// whose last byte (the closing brace) the suffix then replaces; one allocation, as above.
    /// Throws when the entry's block does not decompress.
    public static func encodeResponse(
        _ entry: CompressedEntry, stale: Bool, source: ReadSource
    ) throws(LZ4Error) -> [UInt8] {
        let closing = responseClosing(stale: stale, source: source)
        let stored = try entry.storedBlock()
        return try ByteArrayWriter.makeArray(capacity: stored.count - 1 + closing.utf8CodeUnitCount) {
            writer throws(LZ4Error) in
            try writer.append(decompressing: stored)
            writer.removeLast()
            writer.append(closing)
        }
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
    static let openChatID: StaticString = #"{"chat_id":"#
    static let openParticipants: StaticString = #","participants":"#
    static let openUserID: StaticString = #"{"user_id":"#
    static let openDisplayName: StaticString = #","display_name":"#
    static let openAvatarURL: StaticString = #","avatar_url":"#
    static let openRole: StaticString = #","role":"#
    static let null: StaticString = "null"
    static let openVersion: StaticString = #","version":"#
    static let openFetchedAt: StaticString = #","fetched_at":"#

    /// The stored form of an entry whose members are already `participantsJSON`, the compact
    /// array ``participantsJSON(_:)`` writes (or the upstream parser copies): exact size, one
    /// allocation. A chat id never needs escaping (its alphabet is `[A-Za-z0-9_.:-]`).
    static func assemble(chatID: ChatID, participantsJSON: [UInt8], version: Int64, fetchedAt: Date) -> [UInt8] {
        let count =
            openChatID.utf8CodeUnitCount + JSONEscaping.plainQuotedCount(chatID.rawValue)
            + openParticipants.utf8CodeUnitCount + participantsJSON.count
            + openVersion.utf8CodeUnitCount + JSONEscaping.decimalCount(version)
            + openFetchedAt.utf8CodeUnitCount + ISO8601Timestamp.length + 3
        return ByteArrayWriter.makeArray(capacity: count) { writer in
            writer.append(openChatID)
            writer.append(UInt8(ascii: "\""))
            writer.append(utf8: chatID.rawValue)
            writer.append(UInt8(ascii: "\""))
            writer.append(openParticipants)
            writer.append(participantsJSON)
            writer.append(openVersion)
            JSONEscaping.writeInteger(version, to: &writer)
            writer.append(openFetchedAt)
            writer.append(UInt8(ascii: "\""))
            ISO8601Timestamp.write(fetchedAt, to: &writer)
            writer.append(UInt8(ascii: "\""))
            writer.append(UInt8(ascii: "}"))
        }
    }

    /// The members as the compact JSON array of the stored form.
    static func participantsJSON(_ participants: [Participant]) -> [UInt8] {
        // Sized for the common case, no string to escape: one allocation, plain copies. A string
        // that needs escaping sends the whole array to the escaping writer instead.
        var plain = false
        let bytes = ByteArrayWriter.makeArray(capacity: plainCount(of: participants)) { writer in
            plain = writePlain(participants, to: &writer)
        }
        if plain { return bytes }
        var writer = JSONWriter(reservingCapacity: bytes.capacity + 64)
        writeEscaping(participants, to: &writer)
        return writer.bytes
    }

    /// The exact length of what ``writePlain(_:to:)`` writes when no string needs escaping.
    private static func plainCount(of participants: [Participant]) -> Int {
        var count = 2 + max(0, participants.count - 1)
        let perParticipant =
            openUserID.utf8CodeUnitCount + openDisplayName.utf8CodeUnitCount
            + openAvatarURL.utf8CodeUnitCount + openRole.utf8CodeUnitCount + 1
        for participant in participants {
            count +=
                perParticipant + JSONEscaping.plainQuotedCount(participant.userID)
                + JSONEscaping.plainQuotedCount(participant.displayName)
                + JSONEscaping.plainQuotedCount(participant.role)
                + (participant.avatarURL.map(JSONEscaping.plainQuotedCount) ?? null.utf8CodeUnitCount)
        }
        return count
    }

    /// Writes the array; false (and a partial output to throw away) as soon as a string needs
    /// escaping.
    private static func writePlain(_ participants: [Participant], to writer: inout ByteArrayWriter) -> Bool {
        writer.append(UInt8(ascii: "["))
        var isFirst = true
        for participant in participants {
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
        writer.append(UInt8(ascii: "]"))
        return true
    }

    /// The same array, escaping what needs it, into a growing buffer: the rare path.
    private static func writeEscaping(_ participants: [Participant], to writer: inout JSONWriter) {
        writer.appendRaw(ascii: UInt8(ascii: "["))
        for (index, participant) in participants.enumerated() {
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
        writer.appendRaw(ascii: UInt8(ascii: "]"))
    }
}
