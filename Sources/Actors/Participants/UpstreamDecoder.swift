import Foundation

/// Turns upstream response bodies into wire types, or into an ``UpstreamDecodingError`` that
/// says what was wrong. Never traps, whatever the bytes.
public enum UpstreamDecoder {
    /// The body of `GET /v1/chats/{chat_id}/participants`; any malformed field refuses the chat.
    /// Well-formed answers take ``UpstreamParser``, the rest `JSONDecoder`.
    public static func decodeChat(_ body: [UInt8]) throws(UpstreamDecodingError) -> UpstreamChat {
        if let parsed = UpstreamParser.chat(body) { return parsed }
        return try decode(UpstreamChat.self, from: body)
    }

    /// The body of `POST /v1/participants:batchGet`; see ``BatchGetResponse`` for per-chat checks.
    /// Well-formed answers (nearly all) take the hand-written ``UpstreamParser``; the rest go to
    /// `JSONDecoder`, which gives the same answers and the reference errors.
    public static func decodeBatchGet(_ body: [UInt8]) throws(UpstreamDecodingError) -> BatchGetResponse {
        if let parsed = UpstreamParser.batchGet(body) { return parsed }
        return try decode(BatchGetResponse.self, from: body)
    }

    /// The body of `GET /v1/chats`; see ``ChatListPage`` for how invalid ids are handled.
    public static func decodeChatListPage(_ body: [UInt8]) throws(UpstreamDecodingError) -> ChatListPage {
        try decode(ChatListPage.self, from: body)
    }

    /// The body of a batch request, as the stub upstream receives it.
    public static func decodeBatchGetRequest(_ body: [UInt8]) throws(UpstreamDecodingError) -> BatchGetRequest {
        try decode(BatchGetRequest.self, from: body)
    }

    /// `JSONDecoder`, the reference every fast path is tested against.
    static func decode<Value: Decodable>(
        _ type: Value.Type, from body: [UInt8]
    ) throws(UpstreamDecodingError) -> Value {
        // JSONDecoder lets some invalid JSON through: invalid UTF-8 in keys it skips, `\u`
        // escapes with fewer than four hex digits (found by the decoder's property tests). The
        // project's strict scanner checks the syntax first.
        var scanner = JSONScanner(body)
        do {
            try scanner.skipValue()
            try scanner.expectEnd()
        } catch {
            throw UpstreamDecodingError(error)
        }
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw UpstreamDecodingError(DecodingFailure(error))
        }
    }
}
