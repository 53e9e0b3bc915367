import Foundation

/// What a result another instance left in Redis must be to stand for a caller's refresh, so
/// that a peer's fresh entry is told apart from the copy being replaced (``RefreshBaseline``).
struct RefreshAcceptance: Sendable, Hashable {
    /// A peer's entry must have been fetched after this, in stored milliseconds (Redis keeps no finer).
    var fetchedAfter: Int64
    /// The same bound for an entry found on taking the lock. Stricter for an explicit refresh:
    /// no holder vouches for that entry, and one fetched in the call's own millisecond (stored
    /// times are rounded) may as well be from just before the call.
    var fetchedAfterOnTakingLock: Int64
    /// Whether a not-found marker found on taking the lock answers the caller. Not for an
    /// explicit refresh: a marker carries no time, so it may predate the call.
    var acceptsMarkerOnTakingLock: Bool

    init(_ baseline: RefreshBaseline, now: Date) {
        switch baseline {
        case .nothing:
            fetchedAfter = .min
            fetchedAfterOnTakingLock = .min
            acceptsMarkerOnTakingLock = true
        case .entry(let fetchedAt):
            fetchedAfter = fetchedAt.storedMilliseconds
            fetchedAfterOnTakingLock = fetchedAfter
            acceptsMarkerOnTakingLock = true
        case .callStart:
            // From a holder that had the lock when the call began, an entry fetched in this very
            // millisecond qualifies.
            fetchedAfter = now.storedMilliseconds - 1
            fetchedAfterOnTakingLock = now.storedMilliseconds
            acceptsMarkerOnTakingLock = false
        }
    }

    /// Whether `entry` (read from Redis while a holder had the lock, `usable`: not past its
    /// TTL) answers the caller.
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
        if let entry, usable, entry.fetchedAt.storedMilliseconds > fetchedAfterOnTakingLock {
            return .adoptEntry(entry)
        }
        if notFound, acceptsMarkerOnTakingLock { return .adoptNotFound }
        return .fetch
    }
}
