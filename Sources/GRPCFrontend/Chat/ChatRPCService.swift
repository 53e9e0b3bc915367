import GRPCCore

/// `chat.v1.ChatService`. The chat core (issue 8) is not merged yet: every call answers
/// UNIMPLEMENTED after authenticating the caller.
public struct ChatRPCService: Chat_V1_ChatService.ServiceProtocol {
    /// The service's name in the health service.
    public static let healthName = Chat_V1_ChatService.descriptor.fullyQualifiedService

    private let authenticator: CallAuthenticator

    public init(authenticator: CallAuthenticator) {
        self.authenticator = authenticator
    }

    public func createChat(
        request: ServerRequest<Chat_V1_CreateChatRequest>, context: ServerContext
    ) async throws -> ServerResponse<Chat_V1_Chat> {
        _ = try authenticator.user(request.metadata)
        throw Self.notYet
    }

    public func postMessage(
        request: ServerRequest<Chat_V1_PostMessageRequest>, context: ServerContext
    ) async throws -> ServerResponse<Chat_V1_PostMessageResponse> {
        _ = try authenticator.user(request.metadata)
        throw Self.notYet
    }

    public func listMessages(
        request: ServerRequest<Chat_V1_ListMessagesRequest>, context: ServerContext
    ) async throws -> ServerResponse<Chat_V1_ListMessagesResponse> {
        _ = try authenticator.user(request.metadata)
        throw Self.notYet
    }

    private static let notYet = RPCError(code: .unimplemented, message: "the chat core is not available in this build")
}
