public import Foundation

/// The chat domain: creating chats, membership, posting and reading messages. Both the HTTP
/// routes (``ChatRoutes``) and the gRPC handlers are thin mappings over it.
///
/// Membership is the union of the participants layer's list for the chat (upstream is the
/// source of truth for the chats it knows) and the members recorded in the store (the creator
/// of a hosted chat and members added through the API). The store is asked first: a recorded
/// member never waits for the participants layer to post. When Redis and upstream are both
/// away, the last known participants (L1) and the store decide.
public struct ChatCore: Sendable {
    /// Limits of the chat API.
    public struct Settings: Sendable, Hashable {
        /// Largest message text in UTF-8 bytes (CHAT_MESSAGE_MAX_BYTES).
        public var messageMaxBytes = 4096
        public var titleMaxBytes = 256
        public var userIDMaxBytes = 128
        public var idempotencyKeyMaxBytes = 255
        /// Members a create request may name besides the creator.
        public var maxInitialMembers = 100
        public var defaultPageSize = 50
        public var maxPageSize = 200

        public init() {}
    }

    public let store: any ChatStore
    public let participants: any ChatParticipantsSource
    public let settings: Settings
    private let now: @Sendable () -> Date
    private let makeChatID: @Sendable () -> ChatID

    public init(
        store: any ChatStore, participants: any ChatParticipantsSource, settings: Settings = Settings(),
        now: @escaping @Sendable () -> Date = { Date() },
        makeChatID: @escaping @Sendable () -> ChatID = ChatCore.newChatID
    ) {
        self.store = store
        self.participants = participants
        self.settings = settings
        self.now = now
        self.makeChatID = makeChatID
    }

    // MARK: Chats

    /// Creates a hosted chat with `creator` and `members` as its recorded members, and makes it
    /// one the participants layer tracks.
    public func createChat(by creator: String, title: String?, members: [String] = []) async throws(ChatError)
        -> ChatView
    {
        try validateUserID(creator, field: "creator")
        if let title, title.utf8.count > settings.titleMaxBytes {
            throw .invalidArgument(field: "title", reason: "at most \(settings.titleMaxBytes) bytes")
        }
        guard members.count <= settings.maxInitialMembers else {
            throw .invalidArgument(field: "members", reason: "at most \(settings.maxInitialMembers) users")
        }
        for member in members { try validateUserID(member, field: "members") }
        let createdAt = Date(chatStoreMilliseconds: now().chatStoreMilliseconds)
        var userIDs = [creator]
        for member in members where !userIDs.contains(member) { userIDs.append(member) }
        // A generated id colliding is all but impossible; one retry covers it anyway.
        for _ in 0..<2 {
            let chat = Chat(id: makeChatID(), title: title, createdBy: creator, createdAt: createdAt)
            let recorded = userIDs.map { ChatMember(chatID: chat.id, userID: $0, addedBy: creator, addedAt: createdAt) }
            if try await storeCall({ () async throws(ChatStoreError) in
                try await store.createChat(chat, members: recorded)
            }) {
                await participants.track(chat.id)
                return ChatView(
                    id: chat.id, hosted: chat,
                    members: recorded.map {
                        MemberView(userID: $0.userID, displayName: nil, avatarURL: nil, role: nil, source: .store)
                    },
                    participantsAvailable: false)
            }
        }
        throw .storeUnavailable("could not allocate a chat id")
    }

    /// The chat with its members, for a member.
    public func chat(_ id: ChatID, for user: String) async throws(ChatError) -> ChatView {
        let access = try await authorize(user, in: id, wantParticipants: true)
        let recorded = try await storeCall { () async throws(ChatStoreError) in try await store.members(of: id) }
        return ChatView(
            id: id, hosted: access.hosted,
            members: Self.mergeMembers(participants: access.participants.list ?? [], recorded: recorded),
            participantsAvailable: access.participants.list != nil)
    }

    /// Records `userID` as a member; the caller must be a member.
    public func addMember(_ userID: String, to chat: ChatID, by user: String) async throws(ChatError) -> MemberAddition
    {
        try validateUserID(userID, field: "user_id")
        _ = try await authorize(user, in: chat, wantParticipants: false)
        let member = ChatMember(
            chatID: chat, userID: userID, addedBy: user,
            addedAt: Date(chatStoreMilliseconds: now().chatStoreMilliseconds))
        let added = try await storeCall { () async throws(ChatStoreError) in try await store.addMember(member) }
        return MemberAddition(member: member, added: added)
    }

    // MARK: Messages

    /// Posts a message as `author`. With an idempotency key, repeating the request returns the
    /// stored message (`replayed`) instead of storing another.
    public func postMessage(
        _ text: String, to chat: ChatID, by author: String, idempotencyKey: String? = nil
    ) async throws(ChatError) -> PostedMessage {
        guard !text.isEmpty else { throw .invalidArgument(field: "text", reason: "must not be empty") }
        guard text.utf8.count <= settings.messageMaxBytes else {
            throw .messageTooLarge(limit: settings.messageMaxBytes)
        }
        if let idempotencyKey { try validateIdempotencyKey(idempotencyKey) }
        let access = try await authorize(author, in: chat, wantParticipants: false)
        let draft = MessageDraft(
            chatID: chat, authorID: author, text: text,
            createdAt: Date(chatStoreMilliseconds: now().chatStoreMilliseconds), idempotencyKey: idempotencyKey)
        let appended = try await storeCall { () async throws(ChatStoreError) in try await store.appendMessage(draft) }
        let author = access.participants.list?.first { $0.userID == author }
        switch appended {
        case .created(let message):
            return PostedMessage(view: MessageView(message: message, author: author), replayed: false)
        case .replayed(let message):
            return PostedMessage(view: MessageView(message: message, author: author), replayed: true)
        case .keyReused(let original):
            throw .idempotencyKeyReused(original: original.id)
        }
    }

    /// A page of messages, newest first, below `before`; `limit` defaults to
    /// ``Settings/defaultPageSize`` and is at most ``Settings/maxPageSize``.
    public func messages(in chat: ChatID, for user: String, before: MessageID? = nil, limit: Int? = nil)
        async throws(ChatError) -> MessagePage
    {
        let limit = limit ?? settings.defaultPageSize
        guard (1...settings.maxPageSize).contains(limit) else {
            throw .invalidArgument(field: "limit", reason: "1...\(settings.maxPageSize)")
        }
        let access = try await authorize(user, in: chat, wantParticipants: true)
        // One more than asked tells whether an older page exists.
        let rows = try await storeCall { () async throws(ChatStoreError) in
            try await store.messages(in: chat, before: before, limit: limit + 1)
        }
        let page = Array(rows.prefix(limit))
        let byUser = Dictionary(
            (access.participants.list ?? []).map { ($0.userID, $0) }, uniquingKeysWith: { first, _ in first })
        let views = page.map { MessageView(message: $0, author: byUser[$0.authorID]) }
        return MessagePage(
            messages: views,
            nextBefore: rows.count > limit ? page.last?.id : nil,
            authorsResolved: views.allSatisfy { $0.author != nil },
            participantsAvailable: access.participants.list != nil)
    }

    // MARK: Membership

    struct Access {
        var hosted: Chat?
        var participants: ChatParticipants
    }

    /// Decides whether `user` may use `chat`. A recorded member passes on the store's word
    /// alone; the participants layer is then asked only when the caller wants display data.
    func authorize(_ user: String, in chat: ChatID, wantParticipants: Bool) async throws(ChatError) -> Access {
        try validateUserID(user, field: "user")
        let recorded = try await storeCall { () async throws(ChatStoreError) in
            try await store.membership(of: user, in: chat)
        }
        if recorded.isMember {
            let listed = wantParticipants ? await participants.participants(of: chat) : .unavailable
            return Access(hosted: recorded.chat, participants: listed)
        }
        let listed = await participants.participants(of: chat)
        switch listed {
        case .known(let list, _):
            guard list.contains(where: { $0.userID == user }) else { throw .notAMember(chat) }
            return Access(hosted: recorded.chat, participants: listed)
        case .unknownChat:
            if recorded.chat != nil { throw .notAMember(chat) }
            throw .chatNotFound(chat)
        case .unavailable:
            if recorded.chat != nil { throw .notAMember(chat) }
            throw .membershipUnknown(chat)
        }
    }

    static func mergeMembers(participants: [Participant], recorded: [ChatMember]) -> [MemberView] {
        let recordedIDs = Set(recorded.map(\.userID))
        var views = participants.map {
            MemberView(
                userID: $0.userID, displayName: $0.displayName, avatarURL: $0.avatarURL, role: $0.role,
                source: recordedIDs.contains($0.userID) ? .both : .participants)
        }
        let listedIDs = Set(participants.map(\.userID))
        for member in recorded where !listedIDs.contains(member.userID) {
            views.append(MemberView(userID: member.userID, displayName: nil, avatarURL: nil, role: nil, source: .store))
        }
        return views
    }

    // MARK: Validation

    /// User ids come from tokens (`sub`) and request bodies: 1...userIDMaxBytes bytes, no control
    /// characters.
    func validateUserID(_ id: String, field: String) throws(ChatError) {
        guard !id.isEmpty, id.utf8.count <= settings.userIDMaxBytes,
            !id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw .invalidArgument(
                field: field, reason: "a user id is 1-\(settings.userIDMaxBytes) bytes without control characters")
        }
    }

    func validateIdempotencyKey(_ key: String) throws(ChatError) {
        guard !key.isEmpty, key.utf8.count <= settings.idempotencyKeyMaxBytes,
            key.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
        else {
            throw .invalidArgument(
                field: "Idempotency-Key", reason: "1-\(settings.idempotencyKeyMaxBytes) visible ASCII characters")
        }
    }

    private func storeCall<Value>(_ call: () async throws(ChatStoreError) -> Value) async throws(ChatError) -> Value {
        do {
            return try await call()
        } catch {
            throw .storeUnavailable(error.description)
        }
    }

    /// `c-` + 12 hex digits of Unix milliseconds + 16 random hex digits: sortable by creation
    /// time, unique without coordination, and a valid ``ChatID``.
    @Sendable public static func newChatID() -> ChatID {
        let milliseconds = UInt64(max(0, Date().chatStoreMilliseconds))
        let time = String(milliseconds, radix: 16)
        let random = String(UInt64.random(in: .min ... .max), radix: 16)
        let text =
            "c-" + String(repeating: "0", count: max(0, 12 - time.count)) + time
            + String(repeating: "0", count: 16 - random.count) + random
        guard let id = ChatID(validating: text) else { preconditionFailure("generated chat id \(text) is invalid") }
        return id
    }
}
