/// The three calls of the upstream participants API (DESIGN §5), as named in metrics and logs.
public enum UpstreamCall: String, Sendable, Hashable, CaseIterable {
    /// `GET /v1/chats/{chat_id}/participants`.
    case participants = "get_participants"
    /// `POST /v1/participants:batchGet`.
    case batchGet = "batch_get"
    /// `GET /v1/chats?page_size=N&page_token=T`.
    case listChats = "list_chats"
}
