public import ChatRuntime
public import Foundation
public import Logging
import Metrics
public import ServiceLifecycle

/// The result of refreshing one chat from upstream.
public enum RefreshResult: Sendable, Hashable {
    /// Fetched by this instance and stored (in Redis, or kept for write-back while Redis is away).
    case fetched(ParticipantsEntry)
    /// Fetched by another instance, which held the chat's refresh lock; read from Redis.
    case fetchedByPeer(ParticipantsEntry)
    /// Upstream does not know the chat; remembered for PARTICIPANTS_NOT_FOUND_TTL.
    case notFound
    /// Upstream failed; nothing was written, the cache keeps its last good data.
    case failed(UpstreamError)
}

/// What the caller already has, so that an entry another instance fetched while this one
/// waited can be told apart from the copy being replaced.
public enum RefreshBaseline: Sendable, Hashable {
    /// A cold read: any entry not past its TTL will do.
    case nothing
    /// The entry fetched at this time is being replaced (stale or expired): only newer will do.
    case entry(fetchedAt: Date)
    /// An explicit refresh (the operator's): only data fetched since the call began will do.
    case callStart
}

/// Coalesces concurrent refreshes of one chat: however many readers ask at once, upstream is
/// called once and every caller gets that one result (single flight).
///
/// With several instances (a ``PeerRefreshLock`` from ``InstanceCoordination``) the single
/// flight spans them: before calling upstream an instance takes the chat's lock in Redis
/// (`SET NX PX`). The holder fetches, stores (entry or not-found marker) and releases the lock;
/// the others poll Redis for the result instead of calling upstream. Taking the lock also reads
/// the chat's entry and not-found marker (one script): a lock found free may have just been
/// released by a holder whose result is then used. When the holder ends
/// without a result (upstream failed, or the lock expired), the waiters compete for the lock
/// once more, so one of them tries upstream once; if that fails too they give up and the
/// reader falls back to stale-if-error. Without Redis, or past the lock's lifetime, an
/// instance fetches by itself: availability over strictness.
///
/// A `Service`: background refreshes (``refreshInBackground(_:replacing:)``) run inside
/// ``run()``, at most `maxBackgroundRefreshes` at once.
public actor RefreshCoordinator: Service {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let upstream: any ParticipantsUpstream
    private let cache: ParticipantsCache
    private let peerLock: PeerRefreshLock?
    private let now: @Sendable () -> Date
    private let logger: Logger
    private var inFlight: [ChatID: Task<RefreshResult, Never>] = [:]
    private let metrics = RefreshMetrics()

    /// A refresh asked for by ``refreshInBackground(_:replacing:)``, run by ``run()``.
    private struct BackgroundRequest: Sendable {
        var chat: ChatID
        var baseline: RefreshBaseline
    }

    private let backgroundRequests: AsyncStream<BackgroundRequest>
    private let backgroundInput: AsyncStream<BackgroundRequest>.Continuation
    /// Chats queued or running in the background: a second request for one is dropped.
    private var backgroundChats: Set<ChatID> = []
    private let maxBackgroundRefreshes: Int

    /// Background requests waiting for a slot; more are dropped (the stale copy is served meanwhile).
    public static let backgroundQueueCapacity = 1024

    /// Lock rounds before a waiter gives up: the first holder's, then one more after it failed.
    static let lockRounds = 2

    /// - Parameters:
    ///   - supervisor: with `coordination`, the Redis the refresh lock lives in.
    ///   - coordination: when set, refreshes are single-flight across instances.
    public init(
        upstream: any ParticipantsUpstream, cache: ParticipantsCache, loop: EventLoop,
        supervisor: RedisSupervisor? = nil, coordination: InstanceCoordination? = nil,
        maxBackgroundRefreshes: Int = 8,
        now: @escaping @Sendable () -> Date = { Date() }, logger: Logger
    ) {
        precondition(maxBackgroundRefreshes > 0)
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.maxBackgroundRefreshes = maxBackgroundRefreshes
        (backgroundRequests, backgroundInput) = AsyncStream.makeStream(
            of: BackgroundRequest.self, bufferingPolicy: .bufferingOldest(Self.backgroundQueueCapacity))
        self.upstream = upstream
        self.cache = cache
        if let supervisor, let coordination {
            self.peerLock = PeerRefreshLock(supervisor: supervisor, coordination: coordination)
        } else {
            self.peerLock = nil
        }
        self.now = now
        self.logger = logger
    }

    /// Refreshes `chat`, joining a refresh already in flight for it.
    public func refresh(_ chat: ChatID, replacing baseline: RefreshBaseline = .callStart) async -> RefreshResult {
        if let running = inFlight[chat] {
            metrics.coalesced.increment()
            return await running.value
        }
        let acceptance = RefreshAcceptance(baseline, now: now())
        // Unstructured on purpose: every concurrent caller joins this one refresh, so it must not
        // be cancelled with the caller that started it. It never outlives that caller's call,
        // which awaits it below (awaiting a task's value waits even when cancelled).
        let task = Task { await self.coordinatedRefresh(chat, acceptance: acceptance) }
        inFlight[chat] = task
        let result = await task.value
        inFlight[chat] = nil
        return result
    }

    /// Asks ``run()`` to refresh the chat without waiting for it (lazy update of a stale entry).
    /// Dropped when the chat is already being refreshed or queued, when the queue is full, and
    /// once the service stopped: the stale copy is served meanwhile.
    public func refreshInBackground(_ chat: ChatID, replacing baseline: RefreshBaseline = .callStart) {
        guard inFlight[chat] == nil, !backgroundChats.contains(chat) else { return }
        let result = backgroundInput.yield(BackgroundRequest(chat: chat, baseline: baseline))
        if case .enqueued = result {
            backgroundChats.insert(chat)
        } else if case .dropped = result {
            metrics.backgroundDropped.increment()
        }
        // `.terminated`: the service stopped; nothing refreshes in the background any more.
    }

    /// Chats being refreshed right now.
    public var inFlightCount: Int { inFlight.count }

    // MARK: Service

    /// Runs the background refreshes, at most `maxBackgroundRefreshes` at once. On graceful
    /// shutdown it takes no new ones (queued ones are dropped) and lets the running ones finish,
    /// each bounded by the upstream call's deadline; a cancellation cancels them.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for await request in backgroundRequests.cancelOnGracefulShutdown() {
                if running >= maxBackgroundRefreshes {
                    // Children are reaped only here, so `running` counts the unreaped ones: at
                    // capacity, wait for one to end.
                    await group.next()
                    running -= 1
                }
                running += 1
                group.addTask { await self.refreshQueued(request) }
            }
            backgroundInput.finish()
            backgroundChats.removeAll()
        }
    }

    private func refreshQueued(_ request: BackgroundRequest) async {
        _ = await refresh(request.chat, replacing: request.baseline)
        backgroundChats.remove(request.chat)
    }

    // MARK: Across instances

    private func coordinatedRefresh(_ chat: ChatID, acceptance: RefreshAcceptance) async -> RefreshResult {
        guard let peerLock else { return await fetchAndStore(chat) }
        for _ in 1...Self.lockRounds {
            switch await peerLock.acquire(chat) {
            case .acquired(let token, let found):
                // The lock may be free because a holder just finished: use its result.
                if let adopted = await adopt(found, of: chat, acceptance: acceptance) {
                    await peerLock.release(chat, token: token)
                    return adopted
                }
                let result = await fetchAndStore(chat)
                await peerLock.release(chat, token: token)
                return result
            case .unavailable(let reason):
                metrics.lockOutcome("unavailable")
                logger.debug(
                    "refresh lock unavailable; fetching without it",
                    metadata: [
                        "participants.chat_id": "\(chat)", "redis.reason": "\(reason)",
                    ])
                return await fetchAndStore(chat)
            case .heldByPeer:
                switch await waitForPeer(chat, lock: peerLock, acceptance: acceptance) {
                case .entry(let entry):
                    metrics.lockOutcome("peer_entry")
                    await cache.adopt(entry)
                    return .fetchedByPeer(entry)
                case .notFound:
                    metrics.lockOutcome("peer_not_found")
                    await cache.adoptNotFound(chat)
                    return .notFound
                case .cannotWait(let reason):
                    metrics.lockOutcome("wait_abandoned")
                    logger.debug(
                        "stopped waiting for another instance's refresh; fetching",
                        metadata: [
                            "participants.chat_id": "\(chat)", "participants.reason": "\(reason)",
                        ])
                    return await fetchAndStore(chat)
                case .peerEndedWithoutResult:
                    // The holder failed (or its lock expired): compete once more, so a single
                    // instance retries upstream instead of every waiter at once.
                    metrics.lockOutcome("peer_failed")
                    continue
                }
            }
        }
        let error = UpstreamError(
            code: .server,
            message: "other instances' refreshes of chat \(chat) failed \(Self.lockRounds) times; not retried here")
        logger.warning(
            "refresh by other instances failed; keeping the last good data",
            metadata: ["participants.chat_id": "\(chat)"])
        return .failed(error)
    }

    private enum PeerOutcome {
        case entry(ParticipantsEntry)
        case notFound
        case peerEndedWithoutResult
        case cannotWait(String)
    }

    /// Polls Redis until the holder's result shows, the lock goes without one, or the lock's
    /// lifetime passes. Polls because nothing can signal: the holder is another process, and
    /// the shared connection cannot subscribe.
    /// What Redis held when this instance took the lock, if it answers the caller: adopted into
    /// L1 and returned. Nil when upstream must be called.
    private func adopt(_ found: PeerRefreshLock.Found, of chat: ChatID, acceptance: RefreshAcceptance) async
        -> RefreshResult?
    {
        let entry = found.entry.flatMap { try? EntryCodec.decodeFromRedis($0) }
        var usable = false
        if let entry { usable = await cache.isUsable(entry) }
        switch acceptance.onTakingLock(entry: entry, usable: usable, notFound: found.notFound) {
        case .adoptEntry(let entry):
            metrics.lockOutcome("peer_entry_after_lock")
            await cache.adopt(entry)
            return .fetchedByPeer(entry)
        case .adoptNotFound:
            metrics.lockOutcome("peer_not_found_after_lock")
            await cache.adoptNotFound(chat)
            return .notFound
        case .fetch:
            return nil
        }
    }

    private func waitForPeer(_ chat: ChatID, lock: PeerRefreshLock, acceptance: RefreshAcceptance) async -> PeerOutcome
    {
        let deadline = ContinuousClock.now + lock.coordination.refreshLockTTL
        while ContinuousClock.now < deadline {
            do {
                try await Task.sleep(for: lock.coordination.refreshLockPollInterval)
            } catch {
                return .cannotWait("cancelled")
            }
            guard let view = await lock.peek(chat) else { return .cannotWait("redis cannot answer") }
            if let bytes = view.entry, let entry = try? EntryCodec.decodeFromRedis(bytes),
                acceptance.accepts(entry, usable: await cache.isUsable(entry))
            {
                return .entry(entry)
            }
            guard !view.lockHeld else { continue }
            // The holder writes before releasing, so its result is visible by now.
            return view.notFound ? .notFound : .peerEndedWithoutResult
        }
        return .cannotWait("the refresh lock outlived its lifetime")
    }

    // MARK: Upstream

    private func fetchAndStore(_ chat: ChatID) async -> RefreshResult {
        metrics.upstreamFetches.increment()
        do {
            guard let fetched = try await upstream.participants(of: chat) else {
                await cache.storeNotFound(chat)
                return .notFound
            }
            guard fetched.chatID == chat else {
                let error = UpstreamError(code: .malformed, message: "asked for chat \(chat), got \(fetched.chatID)")
                logger.error(
                    "upstream answered for another chat; ignored", metadata: ["participants.chat_id": "\(chat)"])
                return .failed(error)
            }
            let entry = ParticipantsEntry(fetched, fetchedAt: now())
            await cache.store(entry)
            return .fetched(entry)
        } catch {
            logger.warning(
                "upstream refresh failed; keeping the last good data",
                metadata: [
                    "participants.chat_id": "\(chat)", "upstream.error": "\(error)",
                ])
            return .failed(error)
        }
    }
}

/// The coordinator's metrics (see docs/COORDINATION-L1.md).
struct RefreshMetrics: Sendable {
    let coalesced = Counter(label: "participants_refresh_coalesced_total")
    let upstreamFetches = Counter(label: "participants_refresh_upstream_fetches_total")
    let backgroundDropped = Counter(label: "participants_refresh_background_dropped_total")

    func lockOutcome(_ outcome: String) {
        Counter(label: "participants_refresh_lock_total", dimensions: [("outcome", outcome)]).increment()
    }
}
