public import Actors
public import GRPCCore
import SwiftProtobuf

/// `chat.v1.ChatService`: the chat routes of the HTTP API (ChatRoutes) over gRPC, a thin mapping
/// onto ``ChatCore`` with its errors mapped to status codes (docs/GRPC.md). The caller is the
/// user JWT's subject.
public struct ChatRPCService: Chat_V1_ChatService.ServiceProtocol {
    /// The service's name in the health service.
    public static let healthName = Chat_V1_ChatService.descriptor.fullyQualifiedService

    private let core: ChatCore
    private let authenticator: CallAuthenticator

    public init(core: ChatCore, authenticator: CallAuthenticator) {
        self.core = core
        self.authenticator = authenticator
    }

    public func createChat(
        request: ServerRequest<Chat_V1_CreateChatRequest>, context: ServerContext
    ) async throws -> ServerResponse<Chat_V1_Chat> {
        let user = try await caller(request.metadata)
        let message = request.message
        let view = try await mapped { () async throws(ChatError) in
            try await core.createChat(
                by: user, title: message.title.isEmpty ? nil : message.title, members: message.members)
        }
        return ServerResponse(message: Chat_V1_Chat(view))
    }

    public func postMessage(
        request: ServerRequest<Chat_V1_PostMessageRequest>, context: ServerContext
    ) async throws -> ServerResponse<Chat_V1_PostMessageResponse> {
        let user = try await caller(request.metadata)
        let message = request.message
        let chat = try RPCErrors.chatID(message.chatID)
        let key = message.idempotencyKey.isEmpty ? nil : message.idempotencyKey
        let posted = try await mapped { () async throws(ChatError) in
            try await core.postMessage(message.text, to: chat, by: user, idempotencyKey: key)
        }
        return ServerResponse(
            message: .with {
                $0.message = Chat_V1_Message(posted.view)
                $0.replayed = posted.replayed
            })
    }

    public func listMessages(
        request: ServerRequest<Chat_V1_ListMessagesRequest>, context: ServerContext
    ) async throws -> ServerResponse<Chat_V1_ListMessagesResponse> {
        let user = try await caller(request.metadata)
        let message = request.message
        let chat = try RPCErrors.chatID(message.chatID)
        var before: MessageID?
        if !message.before.isEmpty {
            guard let id = MessageID(text: message.before) else {
                throw RPCError(code: .invalidArgument, message: "invalid before: a message id from an earlier page")
            }
            before = id
        }
        // proto3 cannot tell 0 from unset: 0 takes the default page size, as an absent `limit` does.
        let limit = message.limit == 0 ? nil : Int(message.limit)
        let page = try await mapped { () async throws(ChatError) in
            try await core.messages(in: chat, for: user, before: before, limit: limit)
        }
        return ServerResponse(message: Chat_V1_ListMessagesResponse(page, chat: chat))
    }

    // MARK: Helpers

    /// The acting user: the token's subject. A valid token without one is refused, as over HTTP.
    private func caller(_ metadata: Metadata) async throws(RPCError) -> String {
        guard let subject = try await authenticator.user(metadata).subject, !subject.isEmpty else {
            throw RPCError(code: .unauthenticated, message: "the token has no subject (sub)")
        }
        return subject
    }

    private func mapped<Value>(_ call: () async throws(ChatError) -> Value) async throws(RPCError) -> Value {
        do {
            return try await call()
        } catch {
            throw RPCErrors.chat(error)
        }
    }
}
