/// What the participants layer says about one chat, for membership and author display data.
public enum ChatParticipants: Sendable, Hashable {
    /// The list (from L1, Redis or upstream; `stale` when older than the stale threshold or the
    /// last known copy used because nothing fresher answered in time).
    case known([Participant], stale: Bool)
    /// Upstream does not know the chat (every chat created through the chat API, for one).
    case unknownChat
    /// Neither the cache nor upstream answered, and nothing is known from before.
    case unavailable

    /// The list when known.
    public var list: [Participant]? {
        if case .known(let list, _) = self { return list }
        return nil
    }
}

/// The chat core's view of the participants layer, so that the core runs (and is tested)
/// with or without it.
public protocol ChatParticipantsSource: Sendable {
    /// The chat's participants; bounded in time, never throws.
    func participants(of chat: ChatID) async -> ChatParticipants
    /// Makes the chat one the background refresh keeps fresh.
    func track(_ chat: ChatID) async
}

/// No participants layer (PARTICIPANTS_INTEGRATION_DISABLED): only the store's members count.
public struct NoParticipants: ChatParticipantsSource {
    public init() {}
    public func participants(of chat: ChatID) async -> ChatParticipants { .unknownChat }
    public func track(_ chat: ChatID) async {}
}
