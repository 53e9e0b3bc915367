import Foundation

/// A member as the chat API shows it: recorded in the store, listed by the participants layer,
/// or both; display data only from the participants layer.
public struct MemberView: Sendable, Hashable {
    public enum Source: String, Sendable {
        case participants, store, both
    }

    public var userID: String
    public var displayName: String?
    public var avatarURL: String?
    /// From the participants list; nil for store-only members.
    public var role: String?
    public var source: Source

    public init(userID: String, displayName: String?, avatarURL: String?, role: String?, source: Source) {
        self.userID = userID
        self.displayName = displayName
        self.avatarURL = avatarURL
        self.role = role
        self.source = source
    }
}

/// A chat as the chat API shows it.
public struct ChatView: Sendable, Hashable {
    public var id: ChatID
    /// The hosted record; nil for a chat only the participants layer knows.
    public var hosted: Chat?
    public var members: [MemberView]
    /// The participants layer answered (fresh or last known); false means `members` holds the
    /// store's members only.
    public var participantsAvailable: Bool

    public init(id: ChatID, hosted: Chat?, members: [MemberView], participantsAvailable: Bool) {
        self.id = id
        self.hosted = hosted
        self.members = members
        self.participantsAvailable = participantsAvailable
    }
}

/// A message with its author's display data, when the participants layer has it.
public struct MessageView: Sendable, Hashable {
    public var message: ChatMessage
    /// The author's entry in the chat's participants list; nil when unknown there or unavailable.
    public var author: Participant?

    public init(message: ChatMessage, author: Participant?) {
        self.message = message
        self.author = author
    }
}

/// A posted message, new or replayed.
public struct PostedMessage: Sendable, Hashable {
    public var view: MessageView
    /// An earlier request with the same idempotency key stored it; nothing new was stored.
    public var replayed: Bool

    public init(view: MessageView, replayed: Bool) {
        self.view = view
        self.replayed = replayed
    }
}

/// One page of a chat's messages, newest first.
public struct MessagePage: Sendable, Hashable {
    public var messages: [MessageView]
    /// The cursor for the next (older) page; nil on the last page.
    public var nextBefore: MessageID?
    /// Every message on the page carries its author's display data.
    public var authorsResolved: Bool
    /// The participants layer answered (fresh or last known).
    public var participantsAvailable: Bool

    public init(messages: [MessageView], nextBefore: MessageID?, authorsResolved: Bool, participantsAvailable: Bool) {
        self.messages = messages
        self.nextBefore = nextBefore
        self.authorsResolved = authorsResolved
        self.participantsAvailable = participantsAvailable
    }
}

/// What adding a member did.
public struct MemberAddition: Sendable, Hashable {
    public var member: ChatMember
    /// False when the user was a recorded member already (`member` is then the request's view).
    public var added: Bool

    public init(member: ChatMember, added: Bool) {
        self.member = member
        self.added = added
    }
}
