import Foundation
import Logging
import Metrics
import Runtime

/// The result of refreshing one chat from upstream.
public enum RefreshResult: Sendable, Hashable {
    /// Fetched and stored (in Redis, or kept for write-back while Redis is away).
    case fetched(ParticipantsEntry)
    /// Upstream does not know the chat; remembered for PARTICIPANTS_NOT_FOUND_TTL.
    case notFound
    /// Upstream failed; nothing was written, the cache keeps its last good data.
    case failed(UpstreamError)
}

/// Coalesces concurrent refreshes of one chat: however many readers ask at once, upstream is
/// called once and every caller gets that one result (single flight).
public actor RefreshCoordinator {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let upstream: any ParticipantsUpstream
    private let cache: ParticipantsCache
    private let now: @Sendable () -> Date
    private let logger: Logger
    private var inFlight: [ChatID: Task<RefreshResult, Never>] = [:]
    private let coalesced = Counter(label: "participants_refresh_coalesced_total")

    public init(
        upstream: any ParticipantsUpstream, cache: ParticipantsCache, loop: EventLoop,
        now: @escaping @Sendable () -> Date = { Date() }, logger: Logger
    ) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.upstream = upstream
        self.cache = cache
        self.now = now
        self.logger = logger
    }

    /// Refreshes `chat`, joining a refresh already in flight for it.
    public func refresh(_ chat: ChatID) async -> RefreshResult {
        if let running = inFlight[chat] {
            coalesced.increment()
            return await running.value
        }
        let task = Task { await self.fetchAndStore(chat) }
        inFlight[chat] = task
        let result = await task.value
        inFlight[chat] = nil
        return result
    }

    /// Starts a refresh without waiting for it (lazy update of a stale entry).
    public func refreshInBackground(_ chat: ChatID) {
        guard inFlight[chat] == nil else { return }
        Task { _ = await self.refresh(chat) }
    }

    /// Chats being refreshed right now.
    public var inFlightCount: Int { inFlight.count }

    private func fetchAndStore(_ chat: ChatID) async -> RefreshResult {
        do {
            guard let fetched = try await upstream.participants(of: chat) else {
                await cache.storeNotFound(chat)
                return .notFound
            }
            guard fetched.chatID == chat else {
                let error = UpstreamError(code: .malformed, message: "asked for chat \(chat), got \(fetched.chatID)")
                logger.error("upstream answered for another chat; ignored", metadata: ["participants.chat_id": "\(chat)"])
                return .failed(error)
            }
            let entry = ParticipantsEntry(fetched, fetchedAt: now())
            await cache.store(entry)
            return .fetched(entry)
        } catch {
            logger.warning("upstream refresh failed; keeping the last good data", metadata: [
                "participants.chat_id": "\(chat)", "upstream.error": "\(error)",
            ])
            return .failed(error)
        }
    }
}
