public import Foundation

/// A chat hosted by this service: created through the chat API and kept in the ``ChatStore``.
/// Chats that only the upstream participants API knows have no such record.
public struct Chat: Sendable, Hashable {
    public var id: ChatID
    /// Optional, at most ``ChatCore/Settings/titleMaxBytes`` bytes.
    public var title: String?
    /// The creator's user id (the `sub` of the token that created it).
    public var createdBy: String
    public var createdAt: Date

    public init(id: ChatID, title: String?, createdBy: String, createdAt: Date) {
        self.id = id
        self.title = title
        self.createdBy = createdBy
        self.createdAt = createdAt
    }
}

/// A member recorded in the store: the creator of a hosted chat, or a user added through the API.
public struct ChatMember: Sendable, Hashable {
    public var chatID: ChatID
    public var userID: String
    public var addedBy: String
    public var addedAt: Date

    public init(chatID: ChatID, userID: String, addedBy: String, addedAt: Date) {
        self.chatID = chatID
        self.userID = userID
        self.addedBy = addedBy
        self.addedAt = addedAt
    }
}

/// A message's identifier: assigned by the store from one increasing sequence shared by every
/// instance, so ids order messages by insertion and serve as the pagination cursor.
/// On the wire it is an opaque decimal string.
public struct MessageID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: Int64

    public init(rawValue: Int64) { self.rawValue = rawValue }

    /// Accepts the wire form: a positive decimal integer.
    public init?(text: String) {
        guard text.utf8.count <= 19, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let value = Int64(text), value > 0
        else { return nil }
        rawValue = value
    }

    public var description: String { String(rawValue) }

    public static func < (lhs: MessageID, rhs: MessageID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A stored message.
public struct ChatMessage: Sendable, Hashable {
    public var id: MessageID
    public var chatID: ChatID
    public var authorID: String
    public var text: String
    /// Milliseconds precision (what both stores keep).
    public var createdAt: Date
    /// The `Idempotency-Key` it was posted with, if any.
    public var idempotencyKey: String?

    public init(id: MessageID, chatID: ChatID, authorID: String, text: String, createdAt: Date, idempotencyKey: String?)
    {
        self.id = id
        self.chatID = chatID
        self.authorID = authorID
        self.text = text
        self.createdAt = createdAt
        self.idempotencyKey = idempotencyKey
    }
}

/// A message to append; the store assigns its id.
public struct MessageDraft: Sendable, Hashable {
    public var chatID: ChatID
    public var authorID: String
    public var text: String
    public var createdAt: Date
    public var idempotencyKey: String?

    public init(chatID: ChatID, authorID: String, text: String, createdAt: Date, idempotencyKey: String?) {
        self.chatID = chatID
        self.authorID = authorID
        self.text = text
        self.createdAt = createdAt
        self.idempotencyKey = idempotencyKey
    }
}

/// What appending a message did.
public enum MessageAppend: Sendable, Hashable {
    /// Stored now.
    case created(ChatMessage)
    /// The same author already posted the same text with the same idempotency key in this chat:
    /// that message, unchanged.
    case replayed(ChatMessage)
    /// The key was used before by this author in this chat with a different text: that message.
    case keyReused(ChatMessage)
}

/// What the store knows about one user and one chat, in one query.
public struct StoreMembership: Sendable, Hashable {
    /// The hosted chat, nil when the store has no record of it.
    public var chat: Chat?
    /// The user is a recorded member (creator or added).
    public var isMember: Bool

    public init(chat: Chat?, isMember: Bool) {
        self.chat = chat
        self.isMember = isMember
    }
}

/// Milliseconds since 1970, the stores' time format (exact in both, and comparable).
public extension Date {
    var chatStoreMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }

    init(chatStoreMilliseconds: Int64) {
        self.init(timeIntervalSince1970: Double(chatStoreMilliseconds) / 1000)
    }
}
