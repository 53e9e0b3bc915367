import Foundation
import Logging
import ServiceLifecycle

extension Scheduler {
    /// Keeps the schedule and produces the runs this instance takes over as leader until graceful
    /// shutdown (or cancellation), then stops the producers: the next leader carries their runs
    /// on from what Redis recorded.
    func produceUntilShutdown() async {
        let loop = loop
        // Discarding: a run's producer task is freed when it ends, not kept until shutdown.
        await withDiscardingTaskGroup { group in
            if settings.intervalRunsEnabled {
                group.addTask(executorPreference: loop) { await self.intervalLoop() }
            }
            if settings.fullRunsEnabled {
                group.addTask(executorPreference: loop) { await self.dailyLoop() }
            }
            if settings.catchUpRunsEnabled, let changes = redisStateChanges {
                group.addTask(executorPreference: loop) { await self.watchRedis(changes) }
            }
            group.addTask(executorPreference: loop) { await self.maintainCoordination() }
            group.addTask(executorPreference: loop) { await self.followLeadership() }
            for await launch in launches.cancelOnGracefulShutdown() {
                group.addTask(executorPreference: loop) {
                    await self.produceShared(launch.record, lease: launch.lease, previousFence: launch.previousFence)
                }
            }
            beginStopping()
            group.cancelAll()
        }
    }

    func beginStopping() {
        guard lifecycle == .running else { return }
        lifecycle = .stopping
        launchContinuation.finish()
        nextIntervalRunAt = nil
        nextFullRunAt = nil
        logger.info("scheduler stopping", metadata: ["sync.producing": "\(shared.producing.count)"])
    }

    func intervalLoop() async {
        while true {
            let delay = IntervalJitter.delay(
                interval: settings.updateInterval, jitter: settings.intervalJitter, random: &random)
            let due = clock.now().addingTimeInterval(delay.timeInterval)
            nextIntervalRunAt = due
            do {
                try await clock.sleep(until: due)
            } catch {
                return
            }
            await scheduledTick(.interval, due: due)
        }
    }

    func dailyLoop() async {
        var lastDue: Date?
        while true {
            // Planned after the last run's instant too, so that a wall clock set back after a
            // run does not start the same day's run twice.
            let due = schedule.nextRun(after: max(clock.now(), lastDue ?? .distantPast))
            nextFullRunAt = due
            do {
                try await clock.sleep(until: due)
            } catch {
                return
            }
            lastDue = due
            await scheduledTick(.full, due: due)
        }
    }

    func watchRedis(_ changes: AsyncStream<RedisStateChange>) async {
        for await change in changes where change.to == .ready && Self.isRecovery(from: change.from) {
            logger.info("redis is back; catching up", metadata: ["redis.from": "\(change.from)"])
            await requestCatchUpRun(trigger: "redis_ready")
        }
    }

    /// Whether reaching `ready` from `state` means Redis came back after an outage.
    static func isRecovery(from state: RedisState) -> Bool {
        switch state {
        case .reconnecting, .unavailable: true
        case .connecting, .ready, .stopped: false
        }
    }
}
