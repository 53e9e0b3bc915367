/// Where chats, their recorded members and their messages live: shared by every instance and
/// kept across restarts. `PostgresChatStore` (deployments) and `SQLiteChatStore` (embedded
/// default) implement it and pass the same contract tests.
///
/// Implementations never block the caller's thread: the HTTP handlers call them from the I/O
/// loop, so blocking database work runs on the implementation's own threads.
public protocol ChatStore: Sendable {
    /// Stores a new chat and its first members. Returns false, changing nothing, when a chat
    /// with this id exists already.
    func createChat(_ chat: Chat, members: [ChatMember]) async throws(ChatStoreError) -> Bool

    /// The hosted chat, nil when the store has none with this id.
    func chat(_ id: ChatID) async throws(ChatStoreError) -> Chat?

    /// The chat (if hosted) and whether `userID` is a recorded member of it.
    func membership(of userID: String, in chat: ChatID) async throws(ChatStoreError) -> StoreMembership

    /// The recorded members, oldest first.
    func members(of chat: ChatID) async throws(ChatStoreError) -> [ChatMember]

    /// Records a member. Returns false, changing nothing, when the user is one already.
    func addMember(_ member: ChatMember) async throws(ChatStoreError) -> Bool

    /// Appends a message, or finds the one an earlier request with the same
    /// (chat, author, idempotency key) stored. Atomic: two concurrent posts with one key, on any
    /// instances, store one message.
    func appendMessage(_ draft: MessageDraft) async throws(ChatStoreError) -> MessageAppend

    /// Up to `limit` messages of the chat with ids below `before` (all when nil), newest first.
    func messages(in chat: ChatID, before: MessageID?, limit: Int) async throws(ChatStoreError) -> [ChatMessage]
}

/// The store could not answer (connection, disk, corrupt data). Reported to clients as 503.
public struct ChatStoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The database is unreachable or refused the operation.
        case unavailable
        /// A row could not be read back into the domain types.
        case corrupt
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
