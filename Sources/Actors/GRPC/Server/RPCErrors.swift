import Actors
import GRPCCore

/// The status codes the HTTP API's errors map to (docs/GRPC.md has the whole table).
enum RPCErrors {
    /// HTTP 400 `invalid_chat_id` → INVALID_ARGUMENT.
    static func chatID(_ text: String) throws(RPCError) -> ChatID {
        guard let chat = ChatID(validating: text) else {
            throw RPCError(
                code: .invalidArgument,
                message:
                    "invalid chat id \(String(reflecting: String(text.prefix(64)))): chat ids are 1-\(ChatID.maximumLength) characters of A-Z a-z 0-9 _ . : -"
            )
        }
        return chat
    }

    /// HTTP 404 `chat_not_found` → NOT_FOUND.
    static func chatNotFound(_ chat: ChatID) -> RPCError {
        RPCError(code: .notFound, message: "no chat \(chat)")
    }

    /// HTTP 503 `participants_unavailable` (neither the cache nor upstream can answer) → UNAVAILABLE.
    static func participantsUnavailable(_ error: UpstreamError) -> RPCError {
        RPCError(code: .unavailable, message: "neither the cache nor upstream can answer: \(error)")
    }

    /// HTTP 504 (upstream timed out) → DEADLINE_EXCEEDED; HTTP 502 (any other upstream failure)
    /// → UNAVAILABLE: the dependency failed, and the call may succeed when retried.
    static func upstreamFailed(_ error: UpstreamError) -> RPCError {
        RPCError(
            code: error.code == .timeout ? .deadlineExceeded : .unavailable,
            message: "upstream \(error.code.rawValue): \(error)")
    }
}

extension RPCErrors {
    /// The one place ``ChatError`` becomes a status, case for case with ChatRoutes' HTTP statuses.
    static func chat(_ error: ChatError) -> RPCError {
        let code: RPCError.Code =
            switch error {
            // HTTP 400, and 413 for an oversized text: a field over its limit is a bad argument
            // (RESOURCE_EXHAUSTED would suggest a quota that frees up).
            case .invalidArgument, .messageTooLarge: .invalidArgument
            // HTTP 404.
            case .chatNotFound: .notFound
            // HTTP 403.
            case .notAMember: .permissionDenied
            // HTTP 422: the key already names another message.
            case .idempotencyKeyReused: .alreadyExists
            // HTTP 503: a retry can succeed.
            case .membershipUnknown, .storeUnavailable: .unavailable
            }
        return RPCError(code: code, message: error.description)
    }
}
