import ChatRuntime
import Foundation
public import Logging

/// The chat API (issue 8): a thin mapping of HTTP onto ``ChatCore``. Every route takes a user
/// JWT; the token's `sub` is the acting user. Errors are `{"error": {"code", "message"}}`.
public struct ChatRoutes: Sendable {
    public let core: ChatCore
    public let users: UserAuthenticator
    private let logger: Logger

    public init(core: ChatCore, users: UserAuthenticator, logger: Logger) {
        self.core = core
        self.users = users
        self.logger = logger
    }

    public var registrations: [RouteRegistration] {
        [
            RouteRegistration(.POST, "/v1/chats") { request in await createChat(request) },
            RouteRegistration(.GET, "/v1/chats/{chat_id}") { request in await getChat(request) },
            RouteRegistration(.POST, "/v1/chats/{chat_id}/members") { request in await addMember(request) },
            RouteRegistration(.POST, "/v1/chats/{chat_id}/messages") { request in await postMessage(request) },
            RouteRegistration(.GET, "/v1/chats/{chat_id}/messages") { request in await listMessages(request) },
        ]
    }

    // MARK: Handlers

    func createChat(_ request: HTTPRequest) async -> HTTPResponse {
        await respond(request, parseChat: false) { user, _ throws(ChatError) in
            let body = try Self.jsonObject(request.body, allowEmpty: true)
            let title = try Self.optionalString(body["title"], field: "title")
            let members = try Self.optionalStringArray(body["members"], field: "members")
            let view = try await core.createChat(by: user, title: title, members: members)
            var response = Self.json(ChatWire.chat(view), status: 201)
            response.headers.append(("Location", "/v1/chats/\(view.id)"))
            return response
        }
    }

    func getChat(_ request: HTTPRequest) async -> HTTPResponse {
        await respond(request) { user, chat throws(ChatError) in
            Self.json(ChatWire.chat(try await core.chat(chat, for: user)))
        }
    }

    func addMember(_ request: HTTPRequest) async -> HTTPResponse {
        await respond(request) { user, chat throws(ChatError) in
            let body = try Self.jsonObject(request.body, allowEmpty: false)
            guard let userID = try Self.optionalString(body["user_id"], field: "user_id") else {
                throw .invalidArgument(field: "user_id", reason: "required")
            }
            let addition = try await core.addMember(userID, to: chat, by: user)
            return Self.json(ChatWire.member(addition), status: addition.added ? 201 : 200)
        }
    }

    func postMessage(_ request: HTTPRequest) async -> HTTPResponse {
        await respond(request) { user, chat throws(ChatError) in
            let body = try Self.jsonObject(request.body, allowEmpty: false)
            guard let text = try Self.optionalString(body["text"], field: "text") else {
                throw .invalidArgument(field: "text", reason: "required")
            }
            let key = request.headers["idempotency-key"]
            let posted = try await core.postMessage(text, to: chat, by: user, idempotencyKey: key)
            var response = Self.json(ChatWire.message(posted.view), status: posted.replayed ? 200 : 201)
            if posted.replayed { response.headers.append(("Idempotent-Replayed", "true")) }
            return response
        }
    }

    func listMessages(_ request: HTTPRequest) async -> HTTPResponse {
        await respond(request) { user, chat throws(ChatError) in
            var before: MessageID?
            if let text = request.query["before"], !text.isEmpty {
                guard let id = MessageID(text: text) else {
                    throw .invalidArgument(field: "before", reason: "a message id from an earlier page")
                }
                before = id
            }
            var limit: Int?
            if let text = request.query["limit"], !text.isEmpty {
                guard let value = Int(text) else { throw .invalidArgument(field: "limit", reason: "an integer") }
                limit = value
            }
            let page = try await core.messages(in: chat, for: user, before: before, limit: limit)
            return Self.json(ChatWire.page(page, chat: chat))
        }
    }

    // MARK: Plumbing

    /// Authenticates, validates the chat id (unless `parseChat` is off), runs `body` and maps
    /// its ``ChatError`` to a response.
    private func respond(
        _ request: HTTPRequest, parseChat: Bool = true,
        _ body: (String, ChatID) async throws(ChatError) -> HTTPResponse
    ) async -> HTTPResponse {
        let user: String
        switch await users.authenticate(request) {
        case .success(let subject): user = subject
        case .failure(let rejection): return rejection.response
        }
        var chat = ChatID(validating: "-")!
        if parseChat {
            guard let parsed = ParticipantsRoutes.chatID(request) else { return ParticipantsRoutes.invalidChatID }
            chat = parsed
        }
        do {
            return try await body(user, chat)
        } catch {
            if case .storeUnavailable(let reason) = error {
                logger.warning(
                    "chat store call failed",
                    metadata: [
                        "http.path": "\(request.path)", "chat.store_error": "\(reason)",
                    ])
            }
            return Self.response(for: error)
        }
    }

    /// The one place ``ChatError`` becomes HTTP.
    static func response(for error: ChatError) -> HTTPResponse {
        switch error {
        case .invalidArgument:
            return .error(status: 400, code: "invalid_argument", message: error.description)
        case .messageTooLarge:
            return .error(status: 413, code: "message_too_large", message: error.description)
        case .chatNotFound:
            return .error(status: 404, code: "chat_not_found", message: error.description)
        case .notAMember:
            return .error(status: 403, code: "not_a_member", message: error.description)
        case .idempotencyKeyReused:
            return .error(status: 422, code: "idempotency_key_reused", message: error.description)
        case .membershipUnknown:
            var response = HTTPResponse.error(status: 503, code: "membership_unknown", message: error.description)
            response.headers.append(("Retry-After", "5"))
            return response
        case .storeUnavailable:
            var response = HTTPResponse.error(status: 503, code: "store_unavailable", message: error.description)
            response.headers.append(("Retry-After", "5"))
            return response
        }
    }

    static func json(_ object: [String: Any], status: Int = 200) -> HTTPResponse {
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else {
            return .error(status: 500, code: "encoding_failed", message: "the response could not be encoded")
        }
        return .json(bytes: Array(data), status: status)
    }

    static func jsonObject(_ body: [UInt8], allowEmpty: Bool) throws(ChatError) -> [String: Any] {
        if body.isEmpty {
            if allowEmpty { return [:] }
            throw .invalidArgument(field: "body", reason: "a JSON object is required")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw .invalidArgument(field: "body", reason: "not a JSON object")
        }
        return object
    }

    static func optionalString(_ value: Any?, field: String) throws(ChatError) -> String? {
        switch value {
        case nil, is NSNull: return nil
        case let text as String: return text
        default: throw .invalidArgument(field: field, reason: "a string")
        }
    }

    static func optionalStringArray(_ value: Any?, field: String) throws(ChatError) -> [String] {
        switch value {
        case nil, is NSNull: return []
        case let list as [Any]:
            var strings: [String] = []
            for item in list {
                guard let text = item as? String else {
                    throw .invalidArgument(field: field, reason: "an array of user ids")
                }
                strings.append(text)
            }
            return strings
        default: throw .invalidArgument(field: field, reason: "an array of user ids")
        }
    }
}

/// The JSON shapes of the chat API (docs/CHAT.md).
enum ChatWire {
    static func chat(_ view: ChatView) -> [String: Any] {
        [
            "chat_id": view.id.rawValue,
            "hosted": view.hosted != nil,
            "title": view.hosted?.title ?? NSNull(),
            "created_by": view.hosted?.createdBy ?? NSNull(),
            "created_at": view.hosted.map { ISO8601Timestamp.string(from: $0.createdAt) } ?? NSNull(),
            "members": view.members.map(member),
            "participants_available": view.participantsAvailable,
        ]
    }

    static func member(_ view: MemberView) -> [String: Any] {
        [
            "user_id": view.userID,
            "display_name": view.displayName ?? NSNull(),
            "avatar_url": view.avatarURL ?? NSNull(),
            "role": view.role ?? NSNull(),
            "source": view.source.rawValue,
        ]
    }

    static func member(_ addition: MemberAddition) -> [String: Any] {
        [
            "chat_id": addition.member.chatID.rawValue,
            "user_id": addition.member.userID,
            "added_by": addition.member.addedBy,
            "added_at": ISO8601Timestamp.string(from: addition.member.addedAt),
            "added": addition.added,
        ]
    }

    static func message(_ view: MessageView) -> [String: Any] {
        let message = view.message
        var author: [String: Any] = ["user_id": message.authorID]
        if let participant = view.author {
            author["display_name"] = participant.displayName
            author["avatar_url"] = participant.avatarURL ?? NSNull()
        }
        return [
            "id": message.id.description,
            "chat_id": message.chatID.rawValue,
            "author_id": message.authorID,
            "author": author,
            "author_resolved": view.author != nil,
            "text": message.text,
            "created_at": ISO8601Timestamp.string(from: message.createdAt),
        ]
    }

    static func page(_ page: MessagePage, chat: ChatID) -> [String: Any] {
        [
            "chat_id": chat.rawValue,
            "messages": page.messages.map(message),
            "next_before": page.nextBefore?.description ?? NSNull(),
            "authors_resolved": page.authorsResolved,
            "participants_available": page.participantsAvailable,
        ]
    }
}
