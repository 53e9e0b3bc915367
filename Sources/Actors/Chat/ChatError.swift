/// Why a chat operation was refused. Closed: the HTTP routes (and the gRPC handlers) map each
/// case to one status.
public enum ChatError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A field is malformed (HTTP 400).
    case invalidArgument(field: String, reason: String)
    /// The message text is over the size limit, in bytes (HTTP 413).
    case messageTooLarge(limit: Int)
    /// Neither the store nor the participants layer knows the chat (HTTP 404).
    case chatNotFound(ChatID)
    /// The caller is not a member of the chat (HTTP 403).
    case notAMember(ChatID)
    /// The idempotency key was used before with a different text (HTTP 422).
    case idempotencyKeyReused(original: MessageID)
    /// The chat is not hosted here and the participants layer cannot answer, so membership
    /// cannot be decided (HTTP 503).
    case membershipUnknown(ChatID)
    /// The store could not answer (HTTP 503).
    case storeUnavailable(String)

    public var description: String {
        switch self {
        case .invalidArgument(let field, let reason): "invalid \(field): \(reason)"
        case .messageTooLarge(let limit): "the message text is over \(limit) bytes"
        case .chatNotFound(let chat): "no chat \(chat)"
        case .notAMember(let chat): "not a member of chat \(chat)"
        case .idempotencyKeyReused(let original):
            "the idempotency key was used for message \(original) with another text"
        case .membershipUnknown(let chat): "membership of chat \(chat) cannot be decided now (participants unavailable)"
        case .storeUnavailable(let reason): "the chat store is unavailable: \(reason)"
        }
    }
}
