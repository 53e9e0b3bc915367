public import ChatRuntime
public import Foundation
public import Logging
import Metrics
public import ServiceLifecycle

/// Keeps this instance's L1 coherent with the other instances' writes: reads the invalidation
/// stream (`participants:v2:{sync}:invalidations`) every poll interval with a non-blocking
/// `XREAD` on the shared connection, ignores its own announcements, and evicts L1 copies older
/// than what another instance wrote (``ParticipantsCache/invalidate(_:)``).
///
/// While Redis is away nothing is read; the stream keeps what others write meanwhile. On the
/// way back the feed checks that the stream still holds everything after the last entry it
/// read (``InvalidationResumePoint``); when it may not (Redis lost or trimmed it, or a failover
/// went back in time), L1 entries fetched before the outage began are dropped.
///
/// On start there is no position to resume from: the feed positions at the stream's end and
/// drops whatever L1 holds by then (entries read in the first moments could have missed an
/// announcement made before the position was taken).
///
/// Readers never wait for it: it runs on its own task and only touches L1 between reads.
public actor InvalidationFeed: Service {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let supervisor: RedisSupervisor
    private let cache: ParticipantsCache
    private let coordination: InstanceCoordination
    private let now: @Sendable () -> Date
    private let logger: Logger

    /// The last stream entry read; nil until positioned on the first `ready`.
    private var lastSeen: RedisStreamID?
    /// When Redis stopped being `ready` (on the cache's clock); nil while no outage is pending.
    private var outageBegan: Date?
    private var wasReady = false
    private var polling = false
    private var lastErrorLogged: ContinuousClock.Instant?
    private var counts = Statistics()
    private let metrics = FeedMetrics()

    /// Counts since start, for tests and the status route.
    public struct Statistics: Sendable, Hashable, Encodable {
        /// Stream entries read, own included.
        public var entriesRead = 0
        /// Entries this instance wrote itself, skipped.
        public var ownSkipped = 0
        /// L1 entries evicted by other instances' writes.
        public var evicted = 0
        /// Reconnects after which entries may have been missed.
        public var gaps = 0
        /// L1 entries dropped after such a reconnect.
        public var droppedAfterGap = 0

        enum CodingKeys: String, CodingKey {
            case entriesRead = "entries_read", ownSkipped = "own_skipped", evicted
            case gaps, droppedAfterGap = "dropped_after_gap"
        }
    }

    public init(
        supervisor: RedisSupervisor, cache: ParticipantsCache, coordination: InstanceCoordination, loop: EventLoop,
        now: @escaping @Sendable () -> Date = { Date() }, logger: Logger
    ) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.supervisor = supervisor
        self.cache = cache
        self.coordination = coordination
        self.now = now
        self.logger = logger
    }

    public var statistics: Statistics { counts }

    /// The last stream entry read (`0-0` for an empty stream); nil until positioned.
    public var position: RedisStreamID? { lastSeen }

    // MARK: Service

    public func run() async throws {
        let changes = await supervisor.stateChanges()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await change in changes { await self.observe(change) }
                }
                group.addTask { await self.pollUntilCancelled() }
                // Either ending (shutdown, or the supervisor stopped) ends both.
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Notes when an outage begins; the first poll after it checks the stream.
    private func observe(_ change: RedisStateChange) async {
        if change.to == .ready {
            wasReady = true
            // Position at once rather than a poll interval later. Awaited here, in the loop
            // that owns it: a round is bounded by the command timeout, and state changes that
            // arrive meanwhile wait in the stream.
            if lastSeen == nil || outageBegan != nil { await pollOnce() }
        } else if wasReady || lastSeen == nil {
            // Also an outage at start-up: L1 may fill from upstream before Redis is reachable.
            if outageBegan == nil { outageBegan = now() }
            wasReady = false
        }
    }

    /// Polls because nothing can signal: the shared connection cannot subscribe, and a
    /// blocking `XREAD` would hold it (docs/COORDINATION-L1.md, section 2).
    private func pollUntilCancelled() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: coordination.invalidationPollInterval)
            } catch {
                return
            }
            await pollOnce()
        }
    }

    // MARK: Reading

    /// One round: position after an outage if needed, then read until the stream is drained.
    /// Public so tests can drive it without waiting for the interval.
    public func pollOnce() async {
        guard !polling else { return }
        polling = true
        defer { polling = false }
        guard await supervisor.state == .ready else { return }
        if lastSeen == nil || outageBegan != nil {
            guard await resume() else { return }
        }
        // Bounded: a stream written faster than it can be read is caught up over later rounds.
        for _ in 0..<10 {
            guard let after = lastSeen, let read = await read(after: after) else { return }
            if read < coordination.invalidationReadCount { return }
        }
    }

    /// Reads one page after `after` and applies it; returns how many entries came, nil on failure.
    private func read(after: RedisStreamID) async -> Int? {
        let reply: RESPValue
        do {
            reply = try await supervisor.send(
                RedisCommand(
                    "XREAD",
                    [
                        "COUNT", String(coordination.invalidationReadCount), "STREAMS", ParticipantsKeys.invalidations,
                        after.description,
                    ]))
        } catch {
            logThrottled("reading the invalidation stream failed", error: "\(error)")
            return nil
        }
        let entries = L1Invalidation.parseReadReply(reply)
        var written: [L1Invalidation.Written] = []
        for entry in entries {
            counts.entriesRead += 1
            if entry.instanceID == coordination.instanceID {
                counts.ownSkipped += 1
            } else {
                written += entry.written
            }
        }
        if !written.isEmpty {
            let evicted = await cache.invalidate(written)
            counts.evicted += evicted
            metrics.evicted.increment(by: evicted)
        }
        // After applying: an outage during the await above re-reads, never skips.
        if let last = entries.last?.id, lastSeen.map({ last > $0 }) ?? true { lastSeen = last }
        return entries.count
    }

    /// Finds where to read from after start-up or an outage, and drops L1 entries from before
    /// the outage when the stream may have lost some of what was written meanwhile.
    private func resume() async -> Bool {
        let replies: [RESPValue]
        do {
            replies = try await supervisor.pipeline([
                RedisCommand("XRANGE", [ParticipantsKeys.invalidations, "-", "+", "COUNT", "1"]),
                RedisCommand("XREVRANGE", [ParticipantsKeys.invalidations, "+", "-", "COUNT", "1"]),
            ])
        } catch {
            logThrottled("positioning on the invalidation stream failed", error: "\(error)")
            return false
        }
        if let refusal = replies.compactMap(\.errorMessage).first {
            logThrottled("positioning on the invalidation stream failed", error: refusal)
            return false
        }
        let first = replies.first?.array?.first.flatMap(L1Invalidation.parseEntry)?.id
        let last = replies.last?.array?.first.flatMap(L1Invalidation.parseEntry)?.id
        let point = InvalidationResumePoint.decide(lastSeen: lastSeen, first: first, last: last)
        if lastSeen == nil {
            let dropped = await cache.dropL1(fetchedBefore: now())
            logger.debug(
                "positioned on the invalidation stream",
                metadata: [
                    "participants.position": "\(point.after)", "participants.dropped": "\(dropped)",
                ])
        } else if point.mayHaveMissedEntries, let outageBegan {
            let dropped = await cache.dropL1(fetchedBefore: outageBegan)
            counts.gaps += 1
            counts.droppedAfterGap += dropped
            metrics.gaps.increment()
            logger.warning(
                "invalidations may have been missed during the Redis outage; dropped older L1 entries",
                metadata: [
                    "participants.dropped": "\(dropped)",
                    "participants.last_seen": "\(lastSeen.map { "\($0)" } ?? "none")",
                    "participants.stream_first": "\(first.map { "\($0)" } ?? "none")",
                    "participants.stream_last": "\(last.map { "\($0)" } ?? "none")",
                ])
        }
        lastSeen = point.after
        outageBegan = nil
        return true
    }

    private func logThrottled(_ message: Logger.Message, error: String) {
        let now = ContinuousClock.now
        if let last = lastErrorLogged, now - last < .seconds(30) { return }
        lastErrorLogged = now
        logger.warning(message, metadata: ["redis.error": "\(error)"])
    }
}

/// The feed's metrics (see docs/COORDINATION-L1.md).
struct FeedMetrics: Sendable {
    let evicted = Counter(label: "participants_l1_invalidated_total")
    let gaps = Counter(label: "participants_l1_invalidation_gaps_total")
}
