import Foundation

/// What a read of one chat's participants produced.
public enum ReadOutcome: Sendable, Hashable {
    case entry(ParticipantsEntry, stale: Bool, source: ReadSource)
    case notFound
    /// Neither the cache nor upstream could answer.
    case unavailable(UpstreamError)
}

/// The read path of DESIGN §2: fresh → serve; stale → serve and refresh in the background
/// (when lazy updates are on); missing or expired → one upstream fetch however many readers
/// wait; upstream failing → the last good copy if there is one (stale-if-error).
public struct ParticipantsReader: Sendable {
    public let cache: ParticipantsCache
    public let coordinator: RefreshCoordinator
    public let lazyUpdate: Bool

    public init(cache: ParticipantsCache, coordinator: RefreshCoordinator, lazyUpdate: Bool) {
        self.cache = cache
        self.coordinator = coordinator
        self.lazyUpdate = lazyUpdate
    }

    /// The chat's fresh L1 entry (compressed), or nil when ``read(_:)`` must answer. For the read route's
    /// immediate path: no task, no actor hop. Does not track the read: call
    /// ``trackFromMemory(_:)`` once the request is authorized and answered from memory.
    /// - Precondition: on the cache's event loop thread (the HTTP server's callback runs there).
    public func freshFromMemory(_ chat: ChatID) -> CompressedEntry? {
        cache.assumeIsolated { $0.freshInMemory(chat) }
    }

    /// Records a read answered from ``freshFromMemory(_:)``, as ``read(_:)`` records its reads.
    /// - Precondition: on the cache's event loop thread.
    public func trackFromMemory(_ chat: ChatID) {
        cache.assumeIsolated { $0.track(chat) }
    }

    public func read(_ chat: ChatID) async -> ReadOutcome {
        await read(chat, isolatedTo: cache)
    }

    /// Runs on the cache's executor, so tracking and the lookup are plain calls instead of a hop
    /// onto the cache and back for each.
    private func read(_ chat: ChatID, isolatedTo cache: isolated ParticipantsCache) async -> ReadOutcome {
        cache.track(chat)
        var fallback: (entry: ParticipantsEntry, source: ReadSource)?
        switch await cache.lookup(chat) {
        case .hit(let entry, .fresh, let source):
            return .entry(entry, stale: false, source: source)
        case .hit(let entry, .stale, let source):
            if lazyUpdate { await coordinator.refreshInBackground(chat, replacing: .entry(fetchedAt: entry.fetchedAt)) }
            return .entry(entry, stale: true, source: source)
        case .hit(let entry, .expired, let source):
            fallback = (entry, source)
        case .notFound:
            return .notFound
        case .miss:
            break
        }
        let baseline: RefreshBaseline = fallback.map { .entry(fetchedAt: $0.entry.fetchedAt) } ?? .nothing
        switch await coordinator.refresh(chat, replacing: baseline) {
        case .fetched(let entry):
            return .entry(entry, stale: false, source: .upstream)
        case .fetchedByPeer(let entry):
            // Another instance fetched it for this read; it reached us through Redis.
            return .entry(entry, stale: false, source: .cache)
        case .notFound:
            return .notFound
        case .failed(let error):
            if let fallback { return .entry(fallback.entry, stale: true, source: fallback.source) }
            return .unavailable(error)
        }
    }
}
