/// This instance's hold on the leader lock: the fencing token that came with it and how long it
/// is good for. Valid until `validUntil` at the latest, counted from when the last successful
/// acquisition or renewal was *sent*, so the local view always ends before the lock in Redis.
public struct LeaderLease: Sendable, Hashable {
    /// `INCR participants:v2:{sync}:fence` at acquisition: larger for every later leader.
    public var fence: Int64
    /// The lock's value, `<instance_id>:<token>`; fenced scripts compare it with the lock.
    public var value: String
    public var validUntil: ContinuousClock.Instant
}

/// When to acquire, renew or give up the lock: the election's decisions without I/O, so they
/// are unit-tested on their own. ``LeaderElector`` carries them out against Redis.
///
/// - A follower tries to acquire when the lock's remaining TTL says it may be free (at most a
///   third of the TTL apart, so takeover after a leader's death takes about one TTL).
/// - A leader renews every third of the TTL; a failed renewal is retried every tenth.
/// - A leader that could not renew within the TTL gives the lease up, whatever Redis says:
///   another instance may hold the lock by then (a partitioned leader stops on its own).
/// - A renewal Redis refuses (the lock is someone else's) ends the lease at once.
struct LeaseKeeper {
    let ttl: Duration
    private(set) var lease: LeaderLease?
    private(set) var nextAttempt: ContinuousClock.Instant
    private var renewalDue: ContinuousClock.Instant

    init(ttl: Duration, now: ContinuousClock.Instant) {
        precondition(ttl > .zero, "the lock TTL must be positive")
        self.ttl = ttl
        nextAttempt = now
        renewalDue = now
    }

    /// A third of the TTL: the renewal period and the longest wait between two acquisition tries.
    var renewalPeriod: Duration { ttl / 3 }

    private var retryStep: Duration { max(ttl / 10, .milliseconds(10)) }

    /// The lease if it is still good at `now`.
    func currentLease(at now: ContinuousClock.Instant) -> LeaderLease? {
        guard let lease, now < lease.validUntil else { return nil }
        return lease
    }

    /// What the elector should do at `now`.
    enum Step: Equatable {
        case acquire
        case renew(LeaderLease)
        case wait(until: ContinuousClock.Instant)
    }

    func step(at now: ContinuousClock.Instant) -> Step {
        if let lease {
            let due = min(renewalDue, lease.validUntil)
            return now >= renewalDue ? .renew(lease) : .wait(until: due)
        }
        return now >= nextAttempt ? .acquire : .wait(until: nextAttempt)
    }

    /// Drops a lease whose time is up; returns it when that happened.
    mutating func expire(at now: ContinuousClock.Instant) -> LeaderLease? {
        guard let lease, now >= lease.validUntil else { return nil }
        self.lease = nil
        nextAttempt = now
        return lease
    }

    mutating func acquired(fence: Int64, value: String, sentAt: ContinuousClock.Instant) {
        lease = LeaderLease(fence: fence, value: value, validUntil: sentAt + ttl)
        renewalDue = sentAt + renewalPeriod
    }

    /// Another instance holds the lock for `remaining` more (nil: unknown).
    mutating func acquireRefused(remaining: Duration?, now: ContinuousClock.Instant) {
        let wait = remaining.map { min(max($0, .milliseconds(5)), renewalPeriod) } ?? renewalPeriod
        nextAttempt = now + wait
    }

    /// Redis did not answer (down, not ready, timed out).
    mutating func acquireFailed(now: ContinuousClock.Instant) {
        nextAttempt = now + min(renewalPeriod, .milliseconds(500))
    }

    mutating func renewed(sentAt: ContinuousClock.Instant) {
        guard var lease else { return }
        lease.validUntil = max(lease.validUntil, sentAt + ttl)
        self.lease = lease
        renewalDue = sentAt + renewalPeriod
    }

    /// The lock is not ours any more; returns the lease lost.
    mutating func renewalRefused(now: ContinuousClock.Instant) -> LeaderLease? {
        defer {
            lease = nil
            nextAttempt = now
        }
        return lease
    }

    /// The renewal did not get through; retried soon, the lease ends at its time regardless.
    mutating func renewalFailed(now: ContinuousClock.Instant) -> LeaderLease? {
        renewalDue = now + retryStep
        return expire(at: now)
    }

    /// Given up (released on shutdown).
    mutating func released(now: ContinuousClock.Instant) {
        lease = nil
        nextAttempt = now
    }
}
