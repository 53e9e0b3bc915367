import Foundation

/// A batch answer sorted against what was asked: each requested chat is found, not found or
/// failed (malformed, or left out of a partial answer), exactly once.
struct BatchAnswer {
    /// Requested chats upstream returned, first occurrence of each.
    var found: [UpstreamChat] = []
    /// Requested chats upstream does not know (and did not also return).
    var notFound: [ChatID] = []
    /// Requested chats neither returned, reported unknown, nor sent malformed.
    var missing: [ChatID] = []
    /// Requested chats that are neither found nor not found: malformed or missing.
    var failedCount = 0
    /// Chats in the answer that were not asked for.
    var unexpected = 0

    init(requested: [ChatID], response: BatchGetResponse) {
        let requestedSet = Set(requested)
        var settled: Set<ChatID> = []
        for chat in response.chats {
            guard requestedSet.contains(chat.chatID) else {
                unexpected += 1
                continue
            }
            if settled.insert(chat.chatID).inserted { found.append(chat) }
        }
        for text in response.notFound {
            guard let chat = ChatID(validating: text), requestedSet.contains(chat) else {
                unexpected += 1
                continue
            }
            if settled.insert(chat).inserted { notFound.append(chat) }
        }
        let malformed = Set(response.rejected.compactMap { $0.chatID.flatMap(ChatID.init(validating:)) })
        missing = requested.filter { !settled.contains($0) && !malformed.contains($0) }
        failedCount = requested.count - settled.count
    }
}
