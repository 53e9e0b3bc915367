public import Foundation

/// How long entries live and when they count as stale (PARTICIPANTS_* variables).
///
/// An entry's age is measured from its `fetched_at`:
/// - younger than `staleThreshold`: fresh, served as is;
/// - from `staleThreshold` to `ttl`: stale, served, and refreshed in the background when lazy
///   updates are on;
/// - from `ttl` to `ttl + keep`: expired; a read refreshes it synchronously and serves the old
///   copy only when upstream fails (stale-if-error, like Varnish's `keep`);
/// - past `ttl + keep` Redis has dropped it.
public struct CacheSettings: Sendable, Hashable {
    public var ttl: Duration
    public var staleThreshold: Duration
    public var keep: Duration
    public var notFoundTTL: Duration
    /// Chats kept in the in-process L1 (0 disables it).
    public var l1Capacity: Int
    /// Entries kept for write-back while Redis is not ready; batch stores wait when it is full.
    public var writeBackLimit: Int
    /// A chat's read is recorded in the tracked set at most once per this period.
    public var trackThrottle: Duration
    /// Redis TTLs get up to this fraction of `ttl` added at random, so entries written together
    /// do not all expire together.
    public var ttlJitter: Double

    public init(
        ttl: Duration, staleThreshold: Duration, keep: Duration, notFoundTTL: Duration, l1Capacity: Int,
        writeBackLimit: Int = 100_000, trackThrottle: Duration = .seconds(60), ttlJitter: Double = 0.05
    ) {
        self.ttl = ttl
        self.staleThreshold = staleThreshold
        self.keep = keep
        self.notFoundTTL = notFoundTTL
        self.l1Capacity = l1Capacity
        self.writeBackLimit = writeBackLimit
        self.trackThrottle = trackThrottle
        self.ttlJitter = ttlJitter
    }

    /// Where an entry of this age stands.
    public func freshness(of entry: ParticipantsEntry, at now: Date) -> Freshness {
        freshness(fetchedAt: entry.fetchedAt, at: now)
    }

    /// The freshness of an entry fetched at `fetchedAt`.
    public func freshness(fetchedAt: Date, at now: Date) -> Freshness {
        let age = ParticipantsEntry.age(fetchedAt: fetchedAt, at: now)
        if age < min(staleThreshold, ttl) { return .fresh }
        if age < ttl { return .stale }
        return .expired
    }
}

/// Where an entry stands by its age; see ``CacheSettings``.
public enum Freshness: String, Sendable, Hashable {
    case fresh, stale, expired
}
