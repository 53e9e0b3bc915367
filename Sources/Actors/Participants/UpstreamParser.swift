/// The common case of upstream answers (`POST /v1/participants:batchGet`, `GET
/// /v1/chats/{chat_id}/participants`), read with ``JSONScanner``: a well-formed body whose chats
/// are all valid.
///
/// Anything else gives nil, and ``UpstreamDecoder`` decodes the body with `JSONDecoder`, whose
/// results and errors stay the reference: a chat to reject, a missing or mistyped field, a
/// duplicate key (`JSONDecoder` keeps the first, which this parser does not try to match), a
/// number `JSONDecoder` reads as an integer but the scanner does not (`1.0`, `1e3`). So for
/// every body this parser accepts, the answer is the one `JSONDecoder` gives, about five times
/// faster: `JSONDecoder` took 44 µs per chat of 20 participants, most of a full sync's CPU
/// (docs/PERFORMANCE.md).
enum UpstreamParser {
    /// A batch answer, or nil to let `JSONDecoder` decide.
    static func batchGet(_ body: [UInt8]) -> BatchGetResponse? {
        var scanner = JSONScanner(body)
        do {
            let response = try parseResponse(&scanner)
            try scanner.expectEnd()
            return response
        } catch {
            return nil
        }
    }

    /// A single chat's answer, or nil to let `JSONDecoder` decide.
    static func chat(_ body: [UInt8]) -> UpstreamChat? {
        var scanner = JSONScanner(body)
        do {
            var scratch = JSONWriter(reservingCapacity: body.count)
            let chat = try parseChat(&scanner, scratch: &scratch)
            try scanner.expectEnd()
            return chat
        } catch {
            return nil
        }
    }

    /// Thrown to leave the fast path; its content is never shown.
    private static let unsupported = DecodingFailure(reason: .invalidValue, path: "$", detail: "not the common case")

    private static func parseResponse(_ scanner: inout JSONScanner) throws(DecodingFailure) -> BatchGetResponse {
        guard try scanner.peekKind() == .object else { throw unsupported }
        try scanner.beginObject()
        var chats: [UpstreamChat]?
        var notFound: [String]?
        var isFirst = true
        while let key = try scanner.nextKey(isFirst: &isFirst) {
            if JSONScanner.bytes(key, equal: "chats") {
                guard chats == nil else { throw unsupported }
                chats = try parseChats(&scanner)
            } else if JSONScanner.bytes(key, equal: "not_found") {
                guard notFound == nil else { throw unsupported }
                notFound = try parseStringsOrNull(&scanner)
            } else {
                try scanner.skipValue()
            }
        }
        guard let chats else { throw unsupported }
        return BatchGetResponse(chats: chats, notFound: notFound ?? [])
    }

    private static func parseChats(_ scanner: inout JSONScanner) throws(DecodingFailure) -> [UpstreamChat] {
        guard try scanner.peekKind() == .array else { throw unsupported }
        try scanner.beginArray()
        var chats: [UpstreamChat] = []
        var scratch = JSONWriter(reservingCapacity: 4096)
        var isFirst = true
        while try scanner.nextElement(isFirst: &isFirst) {
            chats.append(try parseChat(&scanner, scratch: &scratch))
        }
        return chats
    }

    /// - Parameter scratch: where the members are written first, reused from chat to chat so
    ///   that each chat's copy is one allocation of the exact size.
    private static func parseChat(_ scanner: inout JSONScanner, scratch: inout JSONWriter) throws(DecodingFailure)
        -> UpstreamChat
    {
        guard try scanner.peekKind() == .object else { throw unsupported }
        try scanner.beginObject()
        var chatID: ChatID?
        var participants: [UInt8]?
        var version: Int64?
        var isFirst = true
        while let key = try scanner.nextKey(isFirst: &isFirst) {
            if JSONScanner.bytes(key, equal: "chat_id") {
                guard chatID == nil, try scanner.peekKind() == .string,
                    let id = ChatID(validating: try scanner.readString())
                else { throw unsupported }
                chatID = id
            } else if JSONScanner.bytes(key, equal: "participants") {
                guard participants == nil else { throw unsupported }
                participants = try parseParticipants(&scanner, into: &scratch)
            } else if JSONScanner.bytes(key, equal: "version") {
                guard version == nil, try scanner.peekKind() == .number, let value = try scanner.readInt64() else {
                    throw unsupported
                }
                version = value
            } else {
                try scanner.skipValue()
            }
        }
        guard let chatID, let participants, let version else { throw unsupported }
        return UpstreamChat(chatID: chatID, participantsJSON: participants, version: version)
    }

    /// The members, checked and written at once as the compact array of the stored form: each
    /// string token without an escape (nearly all) is copied as it is, the rest are written
    /// again as ``JSONWriter`` escapes; keys come out in the stored order, unknown keys dropped.
    private static func parseParticipants(_ scanner: inout JSONScanner, into writer: inout JSONWriter)
        throws(DecodingFailure) -> [UInt8]
    {
        guard try scanner.peekKind() == .array else { throw unsupported }
        try scanner.beginArray()
        writer.removeAll()
        writer.appendRaw(ascii: UInt8(ascii: "["))
        var isFirst = true
        var wroteOne = false
        while try scanner.nextElement(isFirst: &isFirst) {
            if wroteOne { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            wroteOne = true
            try parseParticipant(&scanner, into: &writer)
        }
        writer.appendRaw(ascii: UInt8(ascii: "]"))
        // A copy of the exact size; the scratch buffer stays for the next chat.
        return writer.bytes.withUnsafeBufferPointer { Array($0) }
    }

    private static func parseParticipant(_ scanner: inout JSONScanner, into writer: inout JSONWriter)
        throws(DecodingFailure)
    {
        guard try scanner.peekKind() == .object else { throw unsupported }
        try scanner.beginObject()
        var userID: StringToken?
        var displayName: StringToken?
        var avatarURL: StringToken?
        var avatarSeen = false
        var role: StringToken?
        var isFirst = true
        while let key = try scanner.nextKeyRange(isFirst: &isFirst) {
            if scanner.bytes(in: key, equal: "user_id") {
                guard userID == nil else { throw unsupported }
                userID = try readToken(&scanner)
            } else if scanner.bytes(in: key, equal: "display_name") {
                guard displayName == nil else { throw unsupported }
                displayName = try readToken(&scanner)
            } else if scanner.bytes(in: key, equal: "avatar_url") {
                guard !avatarSeen else { throw unsupported }
                avatarSeen = true
                if try scanner.peekKind() == .null {
                    try scanner.readNull()
                } else {
                    avatarURL = try readToken(&scanner)
                }
            } else if scanner.bytes(in: key, equal: "role") {
                guard role == nil else { throw unsupported }
                role = try readToken(&scanner)
            } else {
                try scanner.skipValue()
            }
        }
        guard let userID, let displayName, let role else { throw unsupported }
        writer.appendRaw(EntryCodec.openUserID)
        userID.write(from: scanner, to: &writer)
        writer.appendRaw(EntryCodec.openDisplayName)
        displayName.write(from: scanner, to: &writer)
        writer.appendRaw(EntryCodec.openAvatarURL)
        if let avatarURL {
            avatarURL.write(from: scanner, to: &writer)
        } else {
            writer.appendRaw(EntryCodec.null)
        }
        writer.appendRaw(EntryCodec.openRole)
        role.write(from: scanner, to: &writer)
        writer.appendRaw(ascii: UInt8(ascii: "}"))
    }

    /// A string checked by the scanner, remembered by where it is so that nothing is copied
    /// until the member is written in the stored order.
    private enum StringToken {
        /// No escape: its bytes in the input, between the quotes, copied as they are.
        case plain(Range<Int>)
        /// With an escape (rare): its unescaped bytes, written again as ``JSONWriter`` escapes.
        case unescaped(ArraySlice<UInt8>)

        func write(from scanner: JSONScanner, to writer: inout JSONWriter) {
            switch self {
            case .plain(let range): writer.appendQuoted(range, of: scanner)
            case .unescaped(let utf8): writer.appendString(utf8: utf8)
            }
        }
    }

    private static func readToken(_ scanner: inout JSONScanner) throws(DecodingFailure) -> StringToken {
        guard try scanner.peekKind() == .string else { throw unsupported }
        if let range = try scanner.readPlainString() { return .plain(range) }
        return .unescaped(try scanner.readValidatedStringBytes())
    }

    private static func parseStringsOrNull(_ scanner: inout JSONScanner) throws(DecodingFailure) -> [String] {
        if try scanner.peekKind() == .null {
            try scanner.readNull()
            return []
        }
        guard try scanner.peekKind() == .array else { throw unsupported }
        try scanner.beginArray()
        var strings: [String] = []
        var isFirst = true
        while try scanner.nextElement(isFirst: &isFirst) {
            strings.append(try readString(&scanner))
        }
        return strings
    }

    private static func readString(_ scanner: inout JSONScanner) throws(DecodingFailure) -> String {
        guard try scanner.peekKind() == .string else { throw unsupported }
        return try scanner.readString()
    }
}
