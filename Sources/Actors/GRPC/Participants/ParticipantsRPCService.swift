import Actors
public import GRPCCore
import SwiftProtobuf

/// `chat.v1.ParticipantsService`: the participants reads and operator refreshes of the HTTP API
/// (ParticipantsRoutes) over gRPC, with the same validation and errors mapped to status codes
/// (docs/GRPC.md). Without a backend (PARTICIPANTS_INTEGRATION_DISABLED) every call answers
/// UNAVAILABLE, as the HTTP routes answer 503.
public struct ParticipantsRPCService: Chat_V1_ParticipantsService.ServiceProtocol {
    /// The service's name in the health service.
    public static let healthName = Chat_V1_ParticipantsService.descriptor.fullyQualifiedService

    private let backend: ParticipantsBackend?
    private let authenticator: CallAuthenticator

    public init(backend: ParticipantsBackend?, authenticator: CallAuthenticator) {
        self.backend = backend
        self.authenticator = authenticator
    }

    public func getParticipants(
        request: ServerRequest<Chat_V1_GetParticipantsRequest>, context: ServerContext
    ) async throws -> ServerResponse<Chat_V1_ChatParticipants> {
        _ = try await authenticator.user(request.metadata)
        let backend = try enabledBackend()
        let chat = try RPCErrors.chatID(request.message.chatID)
        switch await backend.reader.read(chat) {
        case .entry(let entry, let stale, let source):
            return ServerResponse(message: Chat_V1_ChatParticipants(entry, stale: stale, source: source))
        case .notFound:
            throw RPCErrors.chatNotFound(chat)
        case .unavailable(let error):
            throw RPCErrors.participantsUnavailable(error)
        }
    }

    public func batchGetParticipants(
        request: ServerRequest<Chat_V1_BatchGetParticipantsRequest>, context: ServerContext
    ) async throws -> ServerResponse<Chat_V1_BatchGetParticipantsResponse> {
        _ = try await authenticator.user(request.metadata)
        let backend = try enabledBackend()
        let chats = try Self.distinctChatIDs(request.message.chatIds, limit: backend.batchLimit)
        let reader = backend.reader
        // Every chat at once: the reader serves each from memory or Redis, and the refresh
        // coordinator makes one upstream call per missing chat however many ask.
        let outcomes = await withTaskGroup(of: (Int, ReadOutcome).self) { group in
            for (index, chat) in chats.enumerated() {
                group.addTask { (index, await reader.read(chat)) }
            }
            var outcomes = [ReadOutcome?](repeating: nil, count: chats.count)
            for await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
        var response = Chat_V1_BatchGetParticipantsResponse()
        for (chat, outcome) in zip(chats, outcomes) {
            switch outcome {
            case .entry(let entry, let stale, let source)?:
                response.chats.append(Chat_V1_ChatParticipants(entry, stale: stale, source: source))
            case .notFound?:
                response.notFound.append(chat.rawValue)
            case .unavailable?, nil:
                response.unavailable.append(chat.rawValue)
            }
        }
        return ServerResponse(message: response)
    }

    public func refreshParticipants(
        request: ServerRequest<Chat_V1_RefreshParticipantsRequest>, context: ServerContext
    ) async throws -> ServerResponse<Chat_V1_RefreshParticipantsResponse> {
        try authenticator.admin(request.metadata)
        let backend = try enabledBackend()
        switch request.message.target {
        case .chatID(let text):
            let chat = try RPCErrors.chatID(text)
            await backend.reader.cache.track(chat)
            switch await backend.reader.coordinator.refresh(chat) {
            case .fetched(let entry):
                return ServerResponse(
                    message: .with { $0.chat = Chat_V1_ChatParticipants(entry, stale: false, source: .upstream) })
            case .fetchedByPeer(let entry):
                // Another instance was fetching the chat when the call came; its result is as new.
                return ServerResponse(
                    message: .with { $0.chat = Chat_V1_ChatParticipants(entry, stale: false, source: .cache) })
            case .notFound:
                throw RPCError(code: .notFound, message: "upstream does not know chat \(chat)")
            case .failed(let error):
                throw RPCErrors.upstreamFailed(error)
            }
        case .allChats(true):
            let jobID = await backend.sync.requestFullRun()
            return ServerResponse(message: .with { $0.jobID = jobID })
        case .allChats(false), nil:
            throw RPCError(
                code: .invalidArgument,
                message: "set chat_id to refresh one chat, or all_chats to true for a full refresh")
        }
    }

    // MARK: Helpers

    private func enabledBackend() throws(RPCError) -> ParticipantsBackend {
        guard let backend else {
            throw RPCError(code: .unavailable, message: "the participants integration is disabled")
        }
        return backend
    }

    /// The ids validated, without repeats, in first-seen order; 1 to `limit` of them.
    static func distinctChatIDs(_ texts: [String], limit: Int) throws(RPCError) -> [ChatID] {
        var seen = Set<ChatID>()
        var chats: [ChatID] = []
        for text in texts {
            let chat = try RPCErrors.chatID(text)
            if seen.insert(chat).inserted { chats.append(chat) }
        }
        guard !chats.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "chat_ids is empty")
        }
        guard chats.count <= limit else {
            throw RPCError(
                code: .invalidArgument, message: "at most \(limit) distinct chat ids per call, got \(chats.count)")
        }
        return chats
    }
}
