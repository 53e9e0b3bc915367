public import ChatRuntime
public import Logging
public import Metrics
public import ServiceLifecycle

/// Elects one leader among the instances sharing a Redis: `SET participants:v2:{sync}:leader
/// <instance_id>:<token> NX PX <ttl>` with `INCR participants:v2:{sync}:fence` in the same script,
/// renewed every third of the TTL by a compare-and-pexpire script, released on shutdown by a
/// compare-and-delete script. ``LeaseKeeper`` decides when; this actor talks to Redis.
///
/// Without Redis nobody is leader: acquisition fails, and a leader that cannot renew gives the
/// lease up when its TTL has passed. Runs on the event loop with the supervisor.
///
/// A `Service` started before the batcher, the stream consumer and the scheduler, so it stops
/// after them: graceful shutdown releases the lock once the producers stopped and the batches in
/// hand finished, and the next leader carries the runs on at once instead of after the TTL.
public actor LeaderElector: Service {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let supervisor: RedisSupervisor
    public nonisolated let instanceID: String
    public nonisolated let ttl: Duration
    private var keeper: LeaseKeeper
    private var random: any RandomNumberGenerator & Sendable
    private let logger: Logger
    private let metrics: any MetricsFactory
    private var released = false
    /// Every change of leadership (the new lease, or nil), for the scheduler.
    public nonisolated let leaseChanges: AsyncStream<LeaderLease?>
    private let leaseChangeInput: AsyncStream<LeaderLease?>.Continuation

    public init(
        supervisor: RedisSupervisor, loop: EventLoop, instanceID: String, ttl: Duration,
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory, logger: Logger
    ) {
        unownedExecutor = loop.asUnownedSerialExecutor()
        self.supervisor = supervisor
        self.instanceID = instanceID
        self.ttl = ttl
        keeper = LeaseKeeper(ttl: ttl, now: .now)
        self.random = random
        self.logger = logger
        metrics = metricsFactory
        (leaseChanges, leaseChangeInput) = AsyncStream.makeStream(
            of: LeaderLease?.self, bufferingPolicy: .bufferingNewest(8))
    }

    /// The lease while this instance is leader and the lease has not run out.
    public var lease: LeaderLease? { keeper.currentLease(at: .now) }

    /// Acquires, renews and gives up the lock until graceful shutdown, then releases it.
    /// Cancellation does not release the lock: it expires after its TTL (that is how a dying
    /// instance behaves, and what tests of a dead leader rely on).
    public func run() async {
        recordLeadership(false)
        await cancelWhenGracefulShutdown {
            await self.keepLease()
        }
        if !Task.isCancelled { await release() }
        leaseChangeInput.finish()
    }

    private func keepLease() async {
        while !Task.isCancelled, !released {
            let now = ContinuousClock.now
            if let lost = keeper.expire(at: now) {
                stepDown(lost, reason: "lease expired without renewal")
            }
            switch keeper.step(at: now) {
            case .acquire:
                await acquire()
            case .renew(let lease):
                await renew(lease)
            case .wait(let until):
                // Timed by the lease itself: renewal, expiry or the next try. Nothing else can
                // signal these; shutdown cancels the wait.
                do { try await Task.sleep(until: until, clock: .continuous) } catch { return }
            }
        }
    }

    /// Gives the lock up now (graceful shutdown) if this instance holds it; stops ``run()``.
    @discardableResult
    public func release() async -> Bool {
        released = true
        guard let lease = keeper.lease else { return false }
        keeper.released(now: .now)
        recordLeadership(false)
        leaseChangeInput.yield(nil)
        let command = Self.eval(CoordinationScripts.release, keys: [CoordinationKeys.leader], arguments: [lease.value])
        let done = (try? await supervisor.send(command))?.int == 1
        logger.info("released the leader lock", metadata: ["sync.fence": "\(lease.fence)", "sync.released": "\(done)"])
        count("released")
        return done
    }

    // MARK: Steps

    private func acquire() async {
        let value = "\(instanceID):\(Self.token(&random))"
        let sent = ContinuousClock.now
        let command = Self.eval(
            CoordinationScripts.acquire, keys: [CoordinationKeys.leader, CoordinationKeys.fence],
            arguments: [value, String(Self.milliseconds(ttl))])
        do {
            let reply = try await supervisor.send(command).array ?? []
            if released {
                // Released while acquiring: give back what this attempt may just have taken.
                if reply.first?.int == 1 {
                    _ = try? await supervisor.send(
                        Self.eval(
                            CoordinationScripts.release, keys: [CoordinationKeys.leader], arguments: [value]))
                }
                return
            }
            if reply.first?.int == 1, let fence = reply.dropFirst().first?.int {
                keeper.acquired(fence: fence, value: value, sentAt: sent)
                recordLeadership(true)
                leaseChangeInput.yield(keeper.lease)
                count("acquired")
                logger.notice(
                    "this instance is the sync leader",
                    metadata: [
                        "sync.fence": "\(fence)", "sync.instance_id": "\(instanceID)",
                    ])
            } else {
                let remaining = reply.dropFirst().first?.int.flatMap { $0 > 0 ? Duration.milliseconds($0) : nil }
                keeper.acquireRefused(remaining: remaining, now: .now)
            }
        } catch {
            keeper.acquireFailed(now: .now)
        }
    }

    private func renew(_ lease: LeaderLease) async {
        let sent = ContinuousClock.now
        let command = Self.eval(
            CoordinationScripts.renew, keys: [CoordinationKeys.leader],
            arguments: [lease.value, String(Self.milliseconds(ttl))])
        do {
            let renewed = try await supervisor.send(command).int == 1
            guard keeper.lease?.value == lease.value else { return }
            if renewed {
                keeper.renewed(sentAt: sent)
            } else if let lost = keeper.renewalRefused(now: .now) {
                stepDown(lost, reason: "the lock belongs to another instance")
            }
        } catch {
            guard keeper.lease?.value == lease.value else { return }
            logger.debug("leader lock renewal failed", metadata: ["error": "\(error)"])
            if let lost = keeper.renewalFailed(now: .now) {
                stepDown(lost, reason: "lease expired without renewal: \(error)")
            }
        }
    }

    private func stepDown(_ lease: LeaderLease, reason: String) {
        recordLeadership(false)
        leaseChangeInput.yield(nil)
        count("lost")
        logger.warning(
            "this instance is no longer the sync leader",
            metadata: [
                "sync.fence": "\(lease.fence)", "sync.reason": "\(reason)",
            ])
    }

    // MARK: Helpers

    private func recordLeadership(_ leading: Bool) {
        Gauge(label: "sync_leader", factory: metrics).record(leading ? 1 : 0)
    }

    private func count(_ event: String) {
        Counter(label: "sync_leader_changes_total", dimensions: [("event", event)], factory: metrics).increment()
    }

    static func token(_ random: inout any RandomNumberGenerator & Sendable) -> String {
        let value = random.next()
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    static func eval(_ script: String, keys: [String], arguments: [String]) -> RedisCommand {
        RedisCommand("EVAL", [script, String(keys.count)] + keys + arguments)
    }
}
