import Foundation

/// Reads the Redis form of ``ParticipantsEntry`` straight from bytes.
///
/// `JSONDecoder` took about 100 µs for an entry of 50 participants, too slow for a read path
/// that decodes on every L1 miss; this parser accepts the same documents (and, being stricter,
/// refuses versions written as `1.0` or `1e3`), reporting problems with the same reasons and
/// paths. Unknown keys are skipped, so a newer writer can add fields.
enum EntryParser {
    static func parse(_ bytes: [UInt8]) throws(DecodingFailure) -> ParticipantsEntry {
        var scanner = JSONScanner(bytes)
        let entry = try parseEntry(&scanner)
        try scanner.expectEnd()
        return entry
    }

    private static func parseEntry(_ scanner: inout JSONScanner) throws(DecodingFailure) -> ParticipantsEntry {
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
        return ParticipantsEntry(chatID: chatID, participants: participants, version: version, fetchedAt: fetchedAt)
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
