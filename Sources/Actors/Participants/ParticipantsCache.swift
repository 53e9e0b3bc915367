public import ChatRuntime
public import Foundation
public import Logging
import Metrics
public import ServiceLifecycle

/// What the cache holds for a chat.
public enum CacheLookup: Sendable, Hashable {
    /// An entry, where it came from (`.memory` for L1, `.cache` for Redis) and how fresh it is.
    case hit(ParticipantsEntry, Freshness, ReadSource)
    /// Upstream recently said the chat does not exist.
    case notFound
    /// Nothing usable.
    case miss
}

/// Participants entries in two tiers: a bounded in-process L1 (LRU) in front of Redis, which
/// every instance shares. Never throws "Redis down" at a reader: without Redis it answers from
/// L1, and what it is asked to store while Redis is not ready is kept (L1 plus a write-back
/// buffer) and written when the supervisor is `ready` again.
///
/// With ``InstanceCoordination``, every write to Redis also announces the written chats on the
/// invalidation stream (in the same pipeline), and ``InvalidationFeed`` applies the other
/// instances' announcements here (``invalidate(_:)``, ``dropL1(fetchedBefore:)``).
///
/// Runs on the event loop with the supervisor, so its Redis calls are plain calls.
public actor ParticipantsCache: ParticipantsStore, Service {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let supervisor: RedisSupervisor
    private let settings: CacheSettings
    private let coordination: InstanceCoordination?
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// TTL jitter needs spread, not secrecy: a generator seeded once instead of a `getrandom`
    /// call for every entry written, which showed in batch-write profiles.
    private var random = SeededRandom(seed: UInt64.random(in: .min ... .max))

    /// The in-memory tier, each entry's stored form compressed (``CompressedEntry``).
    private var l1: LRUCache<ChatID, CompressedEntry>
    private var notFoundL1: LRUCache<ChatID, Date>
    /// The last entry decoded from Redis per chat (see ``decodeStored(_:of:)``); its stored form
    /// is the bytes it came from.
    private var decodedFromRedis = LRUCache<ChatID, ParticipantsEntry>(capacity: ParticipantsCache.decodeMemoCapacity)
    /// Entries not yet in Redis, newest per chat; the actor only carries out its actions.
    private var writeBack: WriteBackBuffer
    /// The batch stores waiting for room in ``writeBack``, by the id it gave them.
    private var writeBackWaiters: [WriteBackBuffer.WaiterID: WriteBackWaiter] = [:]
    /// Last time each chat was recorded as tracked, to throttle the writes.
    private var lastTracked: LRUCache<ChatID, Date>
    /// Tracked reads not yet written to Redis (chat → unix seconds).
    private var pendingTracks: [ChatID: Double] = [:]
    private var trackFlushScheduled = false
    /// Wakes the flush loop of ``run()``: tracks to write, or a write-back retry to make.
    private let flushWakeups: AsyncStream<Void>
    private let flushWakeup: AsyncStream<Void>.Continuation
    private let metrics = CacheMetrics()

    /// Chats whose last decoded Redis entry is kept: the hot set, a few kilobytes each.
    public static let decodeMemoCapacity = 1024

    /// - Parameter coordination: when set, writes are announced on the invalidation stream.
    public init(
        supervisor: RedisSupervisor, loop: EventLoop, settings: CacheSettings,
        coordination: InstanceCoordination? = nil,
        now: @escaping @Sendable () -> Date = { Date() }, logger: Logger
    ) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.supervisor = supervisor
        self.settings = settings
        self.coordination = coordination
        self.now = now
        self.logger = logger
        self.l1 = LRUCache(capacity: settings.l1Capacity)
        self.notFoundL1 = LRUCache(capacity: max(settings.l1Capacity / 4, 0))
        self.lastTracked = LRUCache(capacity: max(settings.l1Capacity, 10_000))
        self.writeBack = WriteBackBuffer(limit: settings.writeBackLimit)
        // One pending wake-up is enough: a woken loop handles everything due.
        (flushWakeups, flushWakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: Service

    /// Writes back what was kept while Redis was away, each time the supervisor becomes ready;
    /// writes tracked reads and retries refused writes when woken. Every flush runs here, so
    /// none outlives the service. On shutdown, batch stores waiting for room stop waiting.
    public func run() async throws {
        let changes = await supervisor.stateChanges()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await change in changes where change.to == .ready { await self.redisBecameReady() }
                }
                group.addTask { await self.flushWhenWoken() }
                // Either ending (shutdown, or the supervisor stopped) ends both.
                await group.next()
                group.cancelAll()
            }
        }
        flushWakeup.finish()
        await perform(writeBack.handle(.shutdown))
    }

    private func redisBecameReady() async {
        await perform(writeBack.handle(.redisReady))
        await flushTracks()
    }

    /// Timed on purpose, the one timer of the cache: tracked reads are written a second after
    /// the first of them (one `ZADD` per second, not one per read), and a write-back Redis
    /// refused while staying ready (`-OOM`) is retried a second later, since nothing signals
    /// when it accepts writes again. A wake-up arriving meanwhile waits in the stream.
    private func flushWhenWoken() async {
        for await _ in flushWakeups {
            do {
                try await Task.sleep(for: .seconds(1))
            } catch {
                return
            }
            await flushTracks()
            if writeBack.retryScheduled {
                let ready = await supervisor.state == .ready
                await perform(writeBack.handle(.retryDue(redisReady: ready)))
            }
        }
    }

    // MARK: Reading

    /// L1, then Redis. A Redis failure reads as a miss, never as an error.
    public func lookup(_ chat: ChatID) async -> CacheLookup {
        let now = now()
        if let expiry = notFoundL1.get(chat) {
            if expiry > now { return .notFound }
            notFoundL1.remove(chat)
        }
        var expiredInL1: ParticipantsEntry?
        if let entry = l1Entry(chat) {
            let freshness = settings.freshness(of: entry, at: now)
            if freshness != .expired {
                metrics.read("l1_\(freshness.rawValue)")
                return .hit(entry, freshness, .memory)
            }
            expiredInL1 = entry
        }
        do {
            // The not-found marker is asked for only when there is no readable entry: a hit, the
            // common case, is one command and one round trip.
            if let bytes = try await replyUnlessRefused(.get(ParticipantsKeys.entry(chat)))?.bytes {
                do {
                    let entry = try decodeStored(bytes, of: chat)
                    let freshness = settings.freshness(of: entry, at: now)
                    // Another instance may have refreshed what L1 holds expired.
                    if let older = expiredInL1, older.fetchedAt > entry.fetchedAt {
                        metrics.read("l1_expired")
                        return .hit(older, .expired, .memory)
                    }
                    l1.set(CompressedEntry(entry), for: chat)
                    metrics.read("redis_\(freshness.rawValue)")
                    return .hit(entry, freshness, .cache)
                } catch {
                    metrics.decodeErrors.increment()
                    logger.error(
                        "unreadable cache entry; treated as missing",
                        metadata: [
                            "participants.chat_id": "\(chat)", "error": "\(error)",
                        ])
                }
            }
            if try await replyUnlessRefused(RedisCommand("EXISTS", [ParticipantsKeys.notFound(chat)]))?.int == 1 {
                notFoundL1.set(now.addingTimeInterval(settings.notFoundTTL.timeInterval), for: chat)
                metrics.read("not_found")
                return .notFound
            }
        } catch {
            metrics.read("redis_unavailable")
        }
        if let expiredInL1 {
            metrics.read("l1_expired")
            return .hit(expiredInL1, .expired, .memory)
        }
        metrics.read("miss")
        return .miss
    }

    /// The reply to `command`; nil when Redis answered with an error (`-WRONGTYPE`, `-OOM`),
    /// which a read treats as "nothing there". Throws when Redis cannot be asked.
    private func replyUnlessRefused(_ command: RedisCommand) async throws -> RESPValue? {
        do {
            return try await supervisor.send(command)
        } catch let error as RedisError where error.code == .server {
            return nil
        }
    }

    /// The entry stored as `bytes`, decoded now or taken from the last decode of the same bytes
    /// for this chat: a hot chat read from Redis (with the L1 off, every read) is decoded once
    /// per write, not once per read. The memo holds what `decodeFromRedis(bytes)` returns, so it
    /// can never serve anything else, whatever another instance writes.
    private func decodeStored(_ bytes: [UInt8], of chat: ChatID) throws(EntryDecodingError) -> ParticipantsEntry {
        if let memo = decodedFromRedis.get(chat), memo.stored.hasSameBytes(as: bytes) {
            return memo
        }
        let entry = try EntryCodec.decodeFromRedis(bytes)
        decodedFromRedis.set(entry, for: chat)
        return entry
    }

    /// The L1 entry of `chat`, decompressed and marked as the most recently used. One that does
    /// not decompress (never expected: the L1 compressed it) is dropped and logged, and reads
    /// as absent, so the read goes on to Redis.
    private func l1Entry(_ chat: ChatID) -> ParticipantsEntry? {
        guard let compressed = l1.get(chat) else { return nil }
        do {
            return try compressed.entry(of: chat)
        } catch {
            l1.remove(chat)
            metrics.decodeErrors.increment()
            logger.error(
                "unreadable L1 entry; dropped", metadata: ["participants.chat_id": "\(chat)", "error": "\(error)"])
            return nil
        }
    }

    /// The L1 entry of `chat`, still compressed, when it is fresh; nil when it is stale, expired,
    /// absent or known not to exist. The part of ``lookup(_:)`` that needs no `await`: the read
    /// route answers from it synchronously on the loop thread (decompressing it straight into
    /// the body), and hands everything else to ``lookup(_:)``.
    public func freshInMemory(_ chat: ChatID) -> CompressedEntry? {
        guard !notFoundL1.contains(chat), let entry = l1.get(chat),
            settings.freshness(fetchedAt: entry.fetchedAt, at: now()) == .fresh
        else { return nil }
        metrics.read("l1_fresh")
        return entry
    }

    /// Records that a chat was read, for the interval refresh (throttled per chat).
    public func track(_ chat: ChatID) {
        let now = now()
        if let last = lastTracked.get(chat), now.timeIntervalSince(last) < settings.trackThrottle.timeInterval {
            return
        }
        lastTracked.set(now, for: chat)
        pendingTracks[chat] = now.timeIntervalSince1970
        if !trackFlushScheduled {
            trackFlushScheduled = true
            flushWakeup.yield()
        }
    }

    // MARK: Writing

    /// Stores one fetched entry (a read-path or manual refresh). Never waits for Redis: while
    /// it is away the entry is kept in L1 and the write-back buffer.
    @discardableResult
    public func store(_ entry: ParticipantsEntry) async -> StoreOutcome {
        remember(entry)
        if await write([entry], notFound: []) { return .written }
        await perform(writeBack.handle(.keep([entry], batch: false)))
        return .deferred
    }

    /// Remembers that upstream does not know the chat.
    public func storeNotFound(_ chat: ChatID) async {
        _ = await write([], notFound: [chat])
        rememberNotFound(chat)
    }

    /// Stores what a sync fetched. Unlike a read's entry, a sync's goes into the L1 only without
    /// evicting (``rememberWithoutEvicting(_:)``).
    public func storeBatch(_ entries: [ParticipantsEntry], notFound: [ChatID]) async -> StoreOutcome {
        for entry in entries { rememberWithoutEvicting(entry) }
        for chat in notFound { rememberNotFound(chat) }
        if await write(entries, notFound: notFound) { return .written }
        await keepWaitingForRoom(entries)
        return .deferred
    }

    public func fetchedAt(of chats: [ChatID]) async -> [ChatID: Date] {
        var result: [ChatID: Date] = [:]
        var unknown: [ChatID] = []
        for chat in chats {
            if let fetchedAt = writeBack.entry(for: chat)?.fetchedAt ?? l1.peek(chat)?.fetchedAt {
                result[chat] = fetchedAt
            } else {
                unknown.append(chat)
            }
        }
        for start in stride(from: 0, to: unknown.count, by: 200) {
            let slice = Array(unknown[start..<min(start + 200, unknown.count)])
            guard let replies = try? await supervisor.pipeline(slice.map { .get(ParticipantsKeys.entry($0)) }) else {
                break
            }
            for (chat, reply) in zip(slice, replies) {
                if let bytes = reply.bytes, let entry = try? EntryCodec.decodeFromRedis(bytes) {
                    result[chat] = entry.fetchedAt
                }
            }
        }
        return result
    }

    public func trackedChats(since: Date) async -> [ChatID] {
        var chats = Set(pendingTracks.filter { $0.value >= since.timeIntervalSince1970 }.keys)
        let command = RedisCommand(
            "ZRANGEBYSCORE", [ParticipantsKeys.tracked, String(since.timeIntervalSince1970), "+inf"])
        if let members = try? await supervisor.send(command).array {
            for member in members {
                if let id = member.string, let chat = ChatID(validating: id) { chats.insert(chat) }
            }
        }
        return chats.sorted { $0.rawValue < $1.rawValue }
    }

    // MARK: Introspection

    /// Counts for the status route and metrics.
    public struct Statistics: Sendable, Encodable {
        public var l1Entries: Int
        public var l1Capacity: Int
        public var notFoundEntries: Int
        public var writeBackPending: Int
        public var writeBackLimit: Int

        enum CodingKeys: String, CodingKey {
            case l1Entries = "l1_entries", l1Capacity = "l1_capacity", notFoundEntries = "not_found_entries"
            case writeBackPending = "write_back_pending", writeBackLimit = "write_back_limit"
        }
    }

    public var statistics: Statistics {
        Statistics(
            l1Entries: l1.count, l1Capacity: settings.l1Capacity, notFoundEntries: notFoundL1.count,
            writeBackPending: writeBack.count, writeBackLimit: settings.writeBackLimit)
    }

    /// The L1 copy, decompressed, without touching recency; for tests and diagnostics (and the
    /// chat core's last resort). Nil also when it does not decompress.
    public func peekL1(_ chat: ChatID) -> ParticipantsEntry? { try? l1.peek(chat)?.entry(of: chat) }

    /// Puts `entry` in the L1 as it is, for tests (a block that does not decompress).
    func putInL1(_ entry: CompressedEntry, for chat: ChatID) { l1.set(entry, for: chat) }

    // MARK: Coordination between instances

    /// Evicts the L1 copies that are older than what another instance announced writing, and
    /// not-found markers set before it; a copy as new or newer stays. Returns how many entries
    /// went. Clock skew between instances shifts the comparison by the skew.
    @discardableResult
    public func invalidate(_ written: [L1Invalidation.Written]) -> Int {
        var evicted = 0
        for item in written {
            let announced = item.fetchedAt.storedMilliseconds
            if let current = l1.peek(item.chat), current.fetchedAt.storedMilliseconds < announced {
                l1.remove(item.chat)
                evicted += 1
            }
            if let expiry = notFoundL1.peek(item.chat), markerSetAt(expiry: expiry).storedMilliseconds < announced {
                notFoundL1.remove(item.chat)
            }
        }
        return evicted
    }

    /// Drops L1 entries and not-found markers from before `date`: after an outage during which
    /// invalidations may have been missed. Returns how many entries went.
    @discardableResult
    public func dropL1(fetchedBefore date: Date) -> Int {
        let before = l1.count
        l1.removeAll { _, entry in entry.fetchedAt < date }
        notFoundL1.removeAll { _, expiry in markerSetAt(expiry: expiry) < date }
        return before - l1.count
    }

    /// Takes an entry another instance fetched (found in Redis by a waiting refresh) into L1.
    func adopt(_ entry: ParticipantsEntry) {
        remember(entry)
    }

    /// Takes another instance's 404 (its marker found in Redis) into the not-found L1.
    func adoptNotFound(_ chat: ChatID) {
        rememberNotFound(chat)
    }

    /// Whether an entry may still be served as a refresh result (not past the TTL).
    func isUsable(_ entry: ParticipantsEntry) -> Bool {
        settings.freshness(of: entry, at: now()) != .expired
    }

    private func markerSetAt(expiry: Date) -> Date {
        expiry.addingTimeInterval(-settings.notFoundTTL.timeInterval)
    }

    // MARK: Internals

    private func remember(_ entry: ParticipantsEntry) {
        if let current = l1.peek(entry.chatID), current.fetchedAt > entry.fetchedAt { return }
        l1.set(CompressedEntry(entry), for: entry.chatID)
        // Skipped when empty, as it nearly always is: a sync remembers every entry it writes.
        if !notFoundL1.isEmpty { notFoundL1.remove(entry.chatID) }
    }

    /// The L1 holds what readers read: a sync's entry replaces the copy the L1 holds, in place
    /// in the recency order, and a new chat is added only while the L1 has room. A full refresh of
    /// more chats than the L1 holds would otherwise replace the readers' hot chats with the last
    /// ones of the run (a scan flushing an LRU). The room is looked at before the entry is wrapped
    /// for the L1, since wrapping an entry that came without its block compresses it. A deployment
    /// with fewer chats than the L1 holds still gets them all in memory, for reads while Redis is
    /// away.
    private func rememberWithoutEvicting(_ entry: ParticipantsEntry) {
        if !notFoundL1.isEmpty { notFoundL1.remove(entry.chatID) }
        if let current = l1.peek(entry.chatID) {
            if current.fetchedAt > entry.fetchedAt { return }
        } else if !l1.hasRoom {
            return
        }
        l1.setWithoutEvicting(CompressedEntry(entry), for: entry.chatID)
    }

    private func rememberNotFound(_ chat: ChatID) {
        l1.remove(chat)
        notFoundL1.set(now().addingTimeInterval(settings.notFoundTTL.timeInterval), for: chat)
    }

    /// One pipeline: SET for every entry, SET EX for every not-found marker. True when Redis
    /// took every entry.
    private func write(_ entries: [ParticipantsEntry], notFound: [ChatID]) async -> Bool {
        guard !entries.isEmpty || !notFound.isEmpty else { return true }
        var commands: [RedisCommand] = []
        commands.reserveCapacity(entries.count + notFound.count)
        let now = now()
        for entry in entries {
            commands.append(
                .set(
                    ParticipantsKeys.entry(entry.chatID), value: EntryCodec.encodeForRedis(entry),
                    expireSeconds: expireSeconds(for: entry, at: now)))
        }
        let notFoundSeconds = max(1, Int(settings.notFoundTTL.components.seconds))
        for chat in notFound {
            commands.append(
                .set(ParticipantsKeys.notFound(chat), value: Array("1".utf8), expireSeconds: notFoundSeconds))
        }
        // After the SETs: whoever reads the announcement finds the data. One connection keeps
        // that order within the pipeline; a cluster's primaries do not, so there it goes after
        // every primary answered.
        let announcement = announce(entries)
        let announceAfter = supervisor.isCluster
        if let announcement, !announceAfter { commands.append(announcement) }
        do {
            var replies = try await supervisor.pipeline(commands)
            if let announcement, announceAfter {
                replies.append((try? await supervisor.pipeline([announcement]))?.first ?? .error("not sent"))
            }
            if announcement != nil, let refusal = replies.last?.errorMessage {
                metrics.announceErrors.increment()
                logger.warning("invalidation not announced", metadata: ["redis.error": "\(refusal)"])
            }
            let refused = replies.prefix(entries.count).filter { $0.errorMessage != nil }
            if let first = refused.first {
                // e.g. OOM with noeviction: nothing is lost, the batch goes to write-back.
                metrics.writeErrors.increment(by: refused.count)
                logger.warning(
                    "redis refused cache writes; kept for write-back",
                    metadata: [
                        "participants.refused": "\(refused.count)", "redis.error": "\(first.errorMessage ?? "")",
                    ])
                return false
            }
            metrics.entriesWritten.increment(by: entries.count)
            return true
        } catch {
            return false
        }
    }

    /// The invalidation-stream entry for written entries; nil without coordination or entries.
    private func announce(_ entries: [ParticipantsEntry]) -> RedisCommand? {
        guard let coordination, !entries.isEmpty else { return nil }
        return L1Invalidation.publishCommand(
            instanceID: coordination.instanceID, entries: entries, maxLength: coordination.invalidationStreamMaxLength)
    }

    private func expireSeconds(for entry: ParticipantsEntry, at now: Date) -> Int {
        let lifetime = (settings.ttl + settings.keep).timeInterval - now.timeIntervalSince(entry.fetchedAt)
        let jitter = settings.ttl.timeInterval * settings.ttlJitter * Double.random(in: 0...1, using: &random)
        return max(1, Int(lifetime + jitter))
    }

    /// Keeps a batch for write-back, waiting for room while the buffer is full: backpressure on
    /// the producer (the sync) until a flush makes room, or until its task is cancelled.
    private func keepWaitingForRoom(_ entries: [ParticipantsEntry]) async {
        var event = WriteBackBuffer.Event.keep(entries, batch: true)
        while let wait = await perform(writeBack.handle(event)) {
            await wait.waiter.wait()
            writeBackWaiters[wait.id] = nil
            if Task.isCancelled {
                // Shutting down: what still finds no room stays in L1 only; counted, never silently.
                await perform(writeBack.handle(.waiterCancelled(wait.id)))
                event = .keep(wait.remaining, batch: false)
            } else {
                event = .keep(wait.remaining, batch: true)
            }
        }
    }

    private struct PendingWait {
        var id: WriteBackBuffer.WaiterID
        var waiter: WriteBackWaiter
        var remaining: [ParticipantsEntry]
    }

    /// Carries out the buffer's actions, feeding the results of writes back into it. Returns the
    /// wait a batch store must make, its waiter already registered (before any suspension, so a
    /// flush that makes room finds it).
    @discardableResult
    private func perform(_ actions: [WriteBackBuffer.Action]) async -> PendingWait? {
        var queue = actions[...]
        var pendingWait: PendingWait?
        while let action = queue.popFirst() {
            switch action {
            case .writeChunk(let chunk):
                let result = await writeChunk(chunk)
                queue.append(contentsOf: writeBack.handle(result))
            case .resumeWaiters(let ids):
                for id in ids { writeBackWaiters.removeValue(forKey: id)?.resume() }
            case .scheduleRetry:
                flushWakeup.yield()
            case .overflowed(let entries):
                metrics.writeBackOverflow.increment(by: entries.count)
                logger.warning(
                    "write-back buffer full; entries kept in L1 only",
                    metadata: [
                        "participants.entries": "\(entries.count)", "participants.chat_id": "\(entries[0].chatID)",
                    ])
            case .wait(let id, let remaining):
                let waiter = WriteBackWaiter()
                writeBackWaiters[id] = waiter
                pendingWait = PendingWait(id: id, waiter: waiter, remaining: remaining)
            case .flushFinished(let written, let pending):
                metrics.writeBackWritten.increment(by: written)
                logger.info(
                    "wrote back entries kept while Redis was away",
                    metadata: [
                        "participants.written": "\(written)", "participants.pending": "\(pending)",
                    ])
            }
        }
        metrics.writeBackPending.record(writeBack.count)
        return pendingWait
    }

    /// Writes one chunk of the buffer, never over newer data another instance wrote.
    private func writeChunk(_ chunk: [ParticipantsEntry]) async -> WriteBackBuffer.Event {
        // Shutting down: the rest stays pending (and in L1).
        guard !Task.isCancelled else { return .flushFailed }
        let now = now()
        let commands = chunk.map { entry in
            RedisCommand(
                "EVAL",
                arguments: [
                    Array(ParticipantsKeys.writeIfNewerScript.utf8), Array("1".utf8),
                    Array(ParticipantsKeys.entry(entry.chatID).utf8), EntryCodec.encodeForRedis(entry),
                    Array(ISO8601Timestamp.string(from: entry.fetchedAt).utf8),
                    Array(String(expireSeconds(for: entry, at: now)).utf8),
                ])
        }
        guard let replies = try? await supervisor.pipeline(commands) else { return .flushFailed }
        var accepted: [ParticipantsEntry] = []
        var replaced: [ParticipantsEntry] = []
        for (entry, reply) in zip(chunk, replies) where reply.errorMessage == nil {
            accepted.append(entry)
            if reply.int == 1 { replaced.append(entry) }
        }
        if let announcement = announce(replaced), (try? await supervisor.send(announcement)) == nil {
            metrics.announceErrors.increment()
        }
        return .chunkWritten(accepted: accepted, refused: min(chunk.count, replies.count) - accepted.count)
    }

    private func flushTracks() async {
        trackFlushScheduled = false
        guard !pendingTracks.isEmpty else { return }
        let batch = pendingTracks
        var arguments = [ParticipantsKeys.tracked]
        for (chat, score) in batch {
            arguments.append(String(score))
            arguments.append(chat.rawValue)
        }
        let trimBefore = now().addingTimeInterval(-7 * 86_400).timeIntervalSince1970
        do {
            _ = try await supervisor.pipeline([
                RedisCommand("ZADD", arguments),
                RedisCommand("ZREMRANGEBYSCORE", [ParticipantsKeys.tracked, "-inf", "(\(trimBefore)"]),
            ])
            for (chat, score) in batch where pendingTracks[chat] == score { pendingTracks[chat] = nil }
        } catch {
            // Kept for the next flush; bounded by the tracked LRU's capacity.
            if pendingTracks.count > lastTracked.capacity {
                pendingTracks = [:]
                logger.warning("dropped tracked-chat updates while Redis was away")
            }
        }
    }
}

/// The cache's metrics (see docs/OPERATIONS.md).
struct CacheMetrics: Sendable {
    let decodeErrors = Counter(label: "participants_cache_decode_errors_total")
    let writeErrors = Counter(label: "participants_cache_write_errors_total")
    let entriesWritten = Counter(label: "participants_cache_entries_written_total")
    let writeBackPending = Gauge(label: "participants_writeback_pending")
    let writeBackWritten = Counter(label: "participants_writeback_written_total")
    let writeBackOverflow = Counter(label: "participants_writeback_overflow_total")
    let announceErrors = Counter(label: "participants_invalidation_announce_errors_total")

    let reads = CounterFamily(label: "participants_cache_reads_total", dimension: "result")

    func read(_ result: String) {
        reads.increment(result)
    }
}
