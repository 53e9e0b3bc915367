public import ChatRuntime
public import Logging
import Metrics
public import ServiceLifecycle

/// PINGs Redis every health-check interval while the supervisor is `ready`. A PING that fails,
/// or answers later than `lateAfter`, makes the supervisor drop the connection and reconnect:
/// a frozen or half-dead Redis is noticed even when no reader is sending commands.
///
/// With a Redis Cluster every connected primary is checked, each on its own connection.
///
/// With Sentinel discovery (and for cluster primaries) the same round trip also asks `ROLE`: a
/// master demoted to a replica while still reachable (a failover it missed, e.g. after a
/// partition) is reported too, so the supervisor reconnects to the master the sentinels name
/// (or the cluster reads its topology again).
public actor HealthMonitor: Service {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let supervisor: RedisSupervisor
    private let interval: Duration
    private let lateAfter: Duration
    private let logger: Logger
    private let pingFailures = Counter(label: "redis_ping_failures_total")

    /// - Parameters:
    ///   - interval: REDIS_HEALTH_CHECK_INTERVAL.
    ///   - lateAfter: a PING slower than this counts as failed.
    public init(supervisor: RedisSupervisor, loop: EventLoop, interval: Duration, lateAfter: Duration, logger: Logger) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.supervisor = supervisor
        self.interval = interval
        self.lateAfter = lateAfter
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: self.interval)
                } catch {
                    return
                }
                await self.checkOnce()
            }
        }
    }

    /// One health check of every server (each connected primary of a cluster); public so tests
    /// can drive it without waiting for the interval.
    public func checkOnce() async {
        let targets = await supervisor.healthCheckTargets
        guard targets.count > 1 else {
            if let only = targets.first { await check(only) }
            return
        }
        // At once: a frozen primary must not delay the checks of the others.
        await withTaskGroup(of: Void.self) { group in
            for target in targets { group.addTask { await self.check(target) } }
        }
    }

    private func check(_ supervisor: RedisSupervisor) async {
        guard await supervisor.state == .ready else { return }
        let started = ContinuousClock.now
        let checkRole = supervisor.requiresMasterRole
        let failure: String?
        do {
            let replies = try await supervisor.pipeline(checkRole ? [.ping, RedisCommand("ROLE", [])] : [.ping])
            let elapsed = ContinuousClock.now - started
            if elapsed > lateAfter {
                failure = "PING answered late (\(elapsed))"
            } else if replies.first?.string != "PONG" {
                failure = "unexpected PING reply \(replies.first ?? .null)"
            } else if checkRole, let roleReply = replies.last, (try? RedisSentinel.role(from: roleReply)) != "master" {
                failure = "the server is no longer the master (ROLE says \(roleReply))"
            } else {
                failure = nil
            }
        } catch {
            failure = "PING failed: \(error)"
        }
        guard let failure else { return }
        pingFailures.increment()
        logger.warning("redis health check failed", metadata: ["redis.reason": "\(failure)"])
        await supervisor.reportFailure(reason: failure)
    }
}
