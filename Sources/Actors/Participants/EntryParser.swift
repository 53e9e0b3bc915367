import Foundation

/// Reads the stored form of ``ParticipantsEntry`` straight from bytes.
///
/// `JSONDecoder` took about 100 µs for an entry of 50 participants, too slow for a read path
/// that decodes on every L1 miss. Two readers:
/// - ``storedForm(_:)`` recognises the exact stored form ``EntryCodec`` writes (every entry this
///   service stores) and checks it without decoding a member: the bytes become the entry's
///   stored form as they are.
/// - ``fields(of:)`` decodes any valid document, reporting problems with the reasons and paths
///   `JSONDecoder` would give (and, being stricter, refusing versions written as `1.0` or
///   `1e3`). Unknown keys are skipped, so a newer writer can add fields.
enum EntryParser {
    /// An entry's fields, decoded.
    struct Fields {
        var chatID: ChatID
        var participants: [Participant]
        var version: Int64
        var fetchedAt: Date
    }

    static func fields(of bytes: [UInt8]) throws(DecodingFailure) -> Fields {
        var scanner = JSONScanner(bytes)
        let fields = try parseEntry(&scanner)
        try scanner.expectEnd()
        return fields
    }

    /// The entry whose stored form is exactly `bytes`, or nil when `bytes` are anything else
    /// (another key order, whitespace, unknown keys, an escape, or not valid at all): the caller
    /// then decodes them with ``fields(of:)``. Every string is checked (syntax, UTF-8), so the
    /// bytes are valid JSON when this answers.
    static func storedForm(_ bytes: [UInt8]) -> ParticipantsEntry? {
        var reader = JSONScanner(bytes)
        guard reader.consumeLiteral(EntryCodec.openChatID), let chatRange = reader.storedString(),
            let chatID = ChatID(validating: String(decoding: bytes[chatRange], as: UTF8.self)),
            reader.consumeLiteral(EntryCodec.openParticipants), reader.consumeLiteral("[")
        else { return nil }
        if !reader.consumeLiteral("]") {
            repeat {
                guard reader.consumeLiteral(EntryCodec.openUserID), reader.storedString() != nil,
                    reader.consumeLiteral(EntryCodec.openDisplayName), reader.storedString() != nil,
                    reader.consumeLiteral(EntryCodec.openAvatarURL),
                    reader.consumeLiteral(EntryCodec.null) || reader.storedString() != nil,
                    reader.consumeLiteral(EntryCodec.openRole), reader.storedString() != nil,
                    reader.consumeLiteral("}")
                else { return nil }
            } while reader.consumeLiteral(",")
            guard reader.consumeLiteral("]") else { return nil }
        }
        guard reader.consumeLiteral(EntryCodec.openVersion), let version = reader.storedInteger(),
            reader.consumeLiteral(EntryCodec.openFetchedAt), let timestampRange = reader.storedString(),
            case let timestamp = bytes[timestampRange],
            let fetchedAt = ISO8601Timestamp.date(fromUTF8: timestamp),
            reader.consumeLiteral("}"), reader.isAtEnd
        else { return nil }
        // Only the spelling ISO8601Timestamp writes is the stored form: at this length, with
        // `.` milliseconds and upper-case `T` and `Z` (the reader also takes `t`, `z`, offsets).
        let start = timestamp.startIndex
        guard timestamp.count == ISO8601Timestamp.length, timestamp[start + 10] == UInt8(ascii: "T"),
            timestamp[start + 19] == UInt8(ascii: "."), timestamp[start + 23] == UInt8(ascii: "Z")
        else { return nil }
        return ParticipantsEntry(chatID: chatID, version: version, fetchedAt: fetchedAt, stored: bytes)
    }

    /// The members in a JSON array such as ``UpstreamChat/participantsJSON``.
    static func participants(inArray bytes: [UInt8]) throws(DecodingFailure) -> [Participant] {
        var scanner = JSONScanner(bytes)
        let participants = try parseParticipants(&scanner)
        try scanner.expectEnd()
        return participants
    }

    private static func parseEntry(_ scanner: inout JSONScanner) throws(DecodingFailure) -> Fields {
        try expect(.object, in: &scanner, at: "$")
        try scanner.beginObject()
        var chatID: ChatID?
        var participants: [Participant]?
        var version: Int64?
        var fetchedAt: Date?
        var isFirst = true
        while let key = try scanner.nextKey(isFirst: &isFirst) {
            if JSONScanner.bytes(key, equal: "chat_id") {
                try expect(.string, in: &scanner, at: "$.chat_id")
                let text = try scanner.readString()
                guard let id = ChatID(validating: text) else {
                    throw DecodingFailure(reason: .invalidValue, path: "$.chat_id", detail: "invalid chat id")
                }
                chatID = id
            } else if JSONScanner.bytes(key, equal: "participants") {
                participants = try parseParticipants(&scanner)
            } else if JSONScanner.bytes(key, equal: "version") {
                try expect(.number, in: &scanner, at: "$.version")
                guard let value = try scanner.readInt64() else {
                    throw DecodingFailure(
                        reason: .invalidValue, path: "$.version", detail: "expected an integer within Int64 range")
                }
                version = value
            } else if JSONScanner.bytes(key, equal: "fetched_at") {
                try expect(.string, in: &scanner, at: "$.fetched_at")
                guard let date = ISO8601Timestamp.date(fromUTF8: try scanner.readStringBytes()) else {
                    throw DecodingFailure(
                        reason: .invalidValue, path: "$.fetched_at", detail: "expected an ISO-8601 timestamp")
                }
                fetchedAt = date
            } else {
                try scanner.skipValue()
            }
        }
        guard let chatID else { throw missing("$.chat_id") }
        guard let participants else { throw missing("$.participants") }
        guard let version else { throw missing("$.version") }
        guard let fetchedAt else { throw missing("$.fetched_at") }
        return Fields(chatID: chatID, participants: participants, version: version, fetchedAt: fetchedAt)
    }

    private static func parseParticipants(_ scanner: inout JSONScanner) throws(DecodingFailure) -> [Participant] {
        try expect(.array, in: &scanner, at: "$.participants")
        try scanner.beginArray()
        var participants: [Participant] = []
        var isFirst = true
        while try scanner.nextElement(isFirst: &isFirst) {
            participants.append(try parseParticipant(&scanner, index: participants.count))
        }
        return participants
    }

    private static func parseParticipant(_ scanner: inout JSONScanner, index: Int) throws(DecodingFailure)
        -> Participant
    {
        // Paths are only built when something is wrong.
        func path(_ field: String? = nil) -> String {
            "$.participants[\(index)]" + (field.map { ".\($0)" } ?? "")
        }
        try expect(.object, in: &scanner, at: path())
        try scanner.beginObject()
        var userID: String?
        var displayName: String?
        var avatarURL: String?
        var role: String?
        var isFirst = true
        while let key = try scanner.nextKey(isFirst: &isFirst) {
            if JSONScanner.bytes(key, equal: "user_id") {
                try expect(.string, in: &scanner, at: path("user_id"))
                userID = try scanner.readString()
            } else if JSONScanner.bytes(key, equal: "display_name") {
                try expect(.string, in: &scanner, at: path("display_name"))
                displayName = try scanner.readString()
            } else if JSONScanner.bytes(key, equal: "avatar_url") {
                if try scanner.peekKind() == .null {
                    try scanner.readNull()
                    avatarURL = nil
                } else {
                    try expect(.string, in: &scanner, at: path("avatar_url"))
                    avatarURL = try scanner.readString()
                }
            } else if JSONScanner.bytes(key, equal: "role") {
                try expect(.string, in: &scanner, at: path("role"))
                role = try scanner.readString()
            } else {
                try scanner.skipValue()
            }
        }
        guard let userID else { throw missing(path("user_id")) }
        guard let displayName else { throw missing(path("display_name")) }
        guard let role else { throw missing(path("role")) }
        return Participant(userID: userID, displayName: displayName, avatarURL: avatarURL, role: role)
    }

    private static func expect(
        _ kind: JSONScanner.Kind, in scanner: inout JSONScanner, at path: @autoclosure () -> String
    ) throws(DecodingFailure) {
        let actual = try scanner.peekKind()
        guard actual != kind else { return }
        if actual == .null {
            throw DecodingFailure(reason: .nullValue, path: path(), detail: "expected \(kind), found null")
        }
        throw DecodingFailure(reason: .wrongType, path: path(), detail: "expected \(kind), found \(actual)")
    }

    private static func missing(_ path: String) -> DecodingFailure {
        let field = path.split(separator: ".").last.map(String.init) ?? path
        return DecodingFailure(reason: .missingField, path: path, detail: "missing field \"\(field)\"")
    }
}

/// The values of the stored form, read where they must start: no whitespace before them, which
/// the scanner's own readers would skip.
extension JSONScanner {
    /// A string with no escape (the stored form has one only where ``JSONWriter`` would write
    /// it, which is left to the full parser), checked for control characters and UTF-8; the
    /// range of its bytes between the quotes.
    fileprivate mutating func storedString() -> Range<Int>? {
        guard nextByte == UInt8(ascii: "\"") else { return nil }
        return try? readPlainString()
    }

    /// A JSON integer within `Int64`.
    fileprivate mutating func storedInteger() -> Int64? {
        guard let first = nextByte,
            first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first)
        else { return nil }
        return try? readInt64()
    }
}
