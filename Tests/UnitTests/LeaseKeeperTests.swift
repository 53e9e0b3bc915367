import Testing

@testable import Actors

/// The election's decisions without Redis: when to acquire, renew, and give the lease up.
@Suite("LeaseKeeper")
struct LeaseKeeperTests {
    let t0 = ContinuousClock.now
    let ttl = Duration.seconds(15)

    @Test func followerAcquiresAtOnceThenWaitsForTheLockToBeFree() {
        var keeper = LeaseKeeper(ttl: ttl, now: t0)
        #expect(keeper.step(at: t0) == .acquire)
        // Held by another for 2 s more: try again then, not before.
        keeper.acquireRefused(remaining: .seconds(2), now: t0)
        #expect(keeper.step(at: t0 + .seconds(1)) == .wait(until: t0 + .seconds(2)))
        #expect(keeper.step(at: t0 + .seconds(2)) == .acquire)
        // However long the lock still lives, a third of the TTL at most between tries.
        keeper.acquireRefused(remaining: .seconds(60), now: t0)
        #expect(keeper.step(at: t0) == .wait(until: t0 + .seconds(5)))
        // Redis away: retried within half a second.
        keeper.acquireFailed(now: t0)
        #expect(keeper.step(at: t0 + .milliseconds(500)) == .acquire)
        #expect(keeper.currentLease(at: t0) == nil)
    }

    @Test func leaderRenewsEveryThirdOfTheTTLAndKeepsItsLease() throws {
        var keeper = LeaseKeeper(ttl: ttl, now: t0)
        keeper.acquired(fence: 7, value: "a:1", sentAt: t0)
        let lease = try #require(keeper.currentLease(at: t0))
        #expect(lease.fence == 7)
        #expect(lease.validUntil == t0 + ttl)
        #expect(keeper.step(at: t0 + .seconds(4)) == .wait(until: t0 + .seconds(5)))
        #expect(keeper.step(at: t0 + .seconds(5)) == .renew(lease))
        keeper.renewed(sentAt: t0 + .seconds(5))
        #expect(keeper.currentLease(at: t0 + .seconds(19))?.validUntil == t0 + .seconds(20))
        #expect(keeper.step(at: t0 + .seconds(9)) == .wait(until: t0 + .seconds(10)))
    }

    @Test func leaseEndsWhenRenewalsFailForTheWholeTTL() throws {
        var keeper = LeaseKeeper(ttl: ttl, now: t0)
        keeper.acquired(fence: 1, value: "a:1", sentAt: t0)
        // Failed renewals are retried every tenth of the TTL; the lease holds until its time.
        let firstFailure = keeper.renewalFailed(now: t0 + .seconds(5))
        #expect(firstFailure == nil)
        #expect(keeper.step(at: t0 + .seconds(6)) == .wait(until: t0 + .milliseconds(6_500)))
        let lateFailure = keeper.renewalFailed(now: t0 + .seconds(14))
        #expect(lateFailure == nil)
        #expect(keeper.currentLease(at: t0 + .milliseconds(14_999)) != nil)
        #expect(keeper.currentLease(at: t0 + .seconds(15)) == nil)
        let expired = keeper.expire(at: t0 + .seconds(15))
        let lost = try #require(expired)
        #expect(lost.fence == 1)
        #expect(keeper.lease == nil)
        #expect(keeper.step(at: t0 + .seconds(15)) == .acquire)
    }

    @Test func aRefusedRenewalEndsTheLeaseAtOnce() {
        var keeper = LeaseKeeper(ttl: ttl, now: t0)
        keeper.acquired(fence: 3, value: "a:1", sentAt: t0)
        let lost = keeper.renewalRefused(now: t0 + .seconds(5))
        #expect(lost?.fence == 3)
        #expect(keeper.currentLease(at: t0 + .seconds(5)) == nil)
        #expect(keeper.step(at: t0 + .seconds(5)) == .acquire)
    }

    @Test func releasingEndsTheLease() {
        var keeper = LeaseKeeper(ttl: ttl, now: t0)
        keeper.acquired(fence: 3, value: "a:1", sentAt: t0)
        keeper.released(now: t0 + .seconds(1))
        #expect(keeper.currentLease(at: t0 + .seconds(1)) == nil)
    }

    @Test func aLateRenewalReplyNeverShortensTheLease() {
        var keeper = LeaseKeeper(ttl: ttl, now: t0)
        keeper.acquired(fence: 1, value: "a:1", sentAt: t0 + .seconds(10))
        keeper.renewed(sentAt: t0 + .seconds(5))
        #expect(keeper.lease?.validUntil == t0 + .seconds(25))
    }
}
