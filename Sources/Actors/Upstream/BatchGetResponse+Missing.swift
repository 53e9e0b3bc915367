extension BatchGetResponse {
    /// The requested ids this answer says nothing about: in neither `chats`, `not_found` nor
    /// the rejected (malformed) chats, in request order, without duplicates.
    ///
    /// Upstream may answer a batch partially. A missing id is "unknown", not "gone": callers
    /// keep whatever they have cached for it and ask again later (a later batch, or the
    /// single-chat call); they must not treat it as deleted.
    public func missingIDs(from requested: [ChatID]) -> [ChatID] {
        var answered = Set<String>(minimumCapacity: chats.count + notFound.count + rejected.count)
        for chat in chats { answered.insert(chat.chatID.rawValue) }
        answered.formUnion(notFound)
        for failure in rejected {
            if let chatID = failure.chatID { answered.insert(chatID) }
        }
        var missing: [ChatID] = []
        for id in requested where !answered.contains(id.rawValue) {
            answered.insert(id.rawValue)
            missing.append(id)
        }
        return missing
    }
}
