/// An upstream answer that does not follow the participants API contract.
///
/// Carries what was wrong and where, so the log line is enough to file a bug with the upstream
/// team. Raised instead of crashing or accepting a chat with fields of the wrong type.
public struct UpstreamDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem it was.
    public var reason: DecodingFailureReason
    /// Where in the body, e.g. `$.chats[2].participants[0].role`.
    public var path: String
    /// A human-readable explanation, for logs.
    public var detail: String
    /// The `chat_id` of the malformed chat, when it could still be read.
    public var chatID: String?

    public init(reason: DecodingFailureReason, path: String, detail: String, chatID: String? = nil) {
        self.reason = reason
        self.path = path
        self.detail = detail
        self.chatID = chatID
    }

    init(_ failure: DecodingFailure, chatID: String? = nil) {
        self.init(reason: failure.reason, path: failure.path, detail: failure.detail, chatID: chatID)
    }

    public var description: String {
        var text = "malformed upstream answer: \(reason) at \(path)"
        if let chatID {
            text += " (chat \(String(reflecting: chatID)))"
        }
        return text + ": \(detail)"
    }
}
