import Foundation

/// What a result another instance left in Redis must be to stand for a caller's refresh, so
/// that a peer's fresh entry is told apart from the copy being replaced (``RefreshBaseline``).
struct RefreshAcceptance: Sendable, Hashable {
    /// A peer's entry must have been fetched after this, in stored milliseconds (Redis keeps no finer).
    var fetchedAfter: Int64
    /// Whether a not-found marker found on taking the lock answers the caller. Not for an
    /// explicit refresh: a marker carries no time, so it may predate the call.
    var acceptsMarkerOnTakingLock: Bool

    init(_ baseline: RefreshBaseline, now: Date) {
        switch baseline {
        case .nothing:
            fetchedAfter = .min
            acceptsMarkerOnTakingLock = true
        case .entry(let fetchedAt):
            fetchedAfter = fetchedAt.storedMilliseconds
            acceptsMarkerOnTakingLock = true
        case .callStart:
            // An entry fetched in this very millisecond qualifies.
            fetchedAfter = now.storedMilliseconds - 1
            acceptsMarkerOnTakingLock = false
        }
    }

    /// Whether `entry` (read from Redis, `usable`: not past its TTL) answers the caller.
    func accepts(_ entry: ParticipantsEntry, usable: Bool) -> Bool {
        usable && entry.fetchedAt.storedMilliseconds > fetchedAfter
    }

    /// What to do with what Redis held when this instance took the lock.
    enum OnTakingLock: Sendable, Hashable {
        /// A previous holder's entry answers the caller: adopt it, do not call upstream.
        case adoptEntry(ParticipantsEntry)
        /// A previous holder's 404 answers the caller.
        case adoptNotFound
        /// Nothing usable: call upstream.
        case fetch
    }

    /// `entry` is the decoded entry found (nil if none or unreadable), `usable` whether it is not
    /// past its TTL, `notFound` whether the marker exists. An acceptable entry wins over the
    /// marker, as on the read path.
    func onTakingLock(entry: ParticipantsEntry?, usable: Bool, notFound: Bool) -> OnTakingLock {
        if let entry, accepts(entry, usable: usable) { return .adoptEntry(entry) }
        if notFound, acceptsMarkerOnTakingLock { return .adoptNotFound }
        return .fetch
    }
}
