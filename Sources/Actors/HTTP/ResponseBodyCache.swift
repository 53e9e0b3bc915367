import ChatRuntime

/// Encoded bodies of `GET /v1/chats/{chat_id}/participants`, one per chat, reused for as long as
/// the cache hands out the same entry: a hot chat is encoded once per refresh instead of once
/// per request.
///
/// A body is reused only for an entry equal to the one it was encoded from, with the same
/// `stale` flag and source, so it is always exactly what ``EntryCodec/encodeResponse(_:stale:source:)``
/// would write. The check is cheap in the common case: the L1 hands out the same entry value,
/// whose arrays and strings compare by identity first. Bounded: past `capacity` chats the least
/// recently read goes; capacity 0 encodes every time.
public final class ResponseBodyCache: Sendable {
    private struct Body: Sendable {
        var entry: ParticipantsEntry
        var stale: Bool
        var source: ReadSource
        var bytes: [UInt8]
    }

    /// The most chats kept.
    public let capacity: Int
    private let bodies: AnnotatedMutex<LRUCache<ChatID, Body>>

    public init(capacity: Int) {
        self.capacity = capacity
        bodies = AnnotatedMutex(LRUCache(capacity: capacity))
    }

    /// The response body for `entry`, encoded now or reused.
    public func body(for entry: ParticipantsEntry, stale: Bool, source: ReadSource) -> [UInt8] {
        guard capacity > 0 else { return EntryCodec.encodeResponse(entry, stale: stale, source: source) }
        let reused = bodies.withLock { bodies -> [UInt8]? in
            guard let body = bodies.get(entry.chatID), body.stale == stale, body.source == source,
                body.entry == entry
            else { return nil }
            return body.bytes
        }
        if let reused { return reused }
        let bytes = EntryCodec.encodeResponse(entry, stale: stale, source: source)
        bodies.withLock {
            _ = $0.set(Body(entry: entry, stale: stale, source: source, bytes: bytes), for: entry.chatID)
        }
        return bytes
    }

    /// Chats with a body kept right now.
    public var count: Int { bodies.withLock { $0.count } }
}
