import Foundation
import Logging
import ServiceLifecycle

extension Scheduler {
    /// Starts runs as they are requested until graceful shutdown (or cancellation), then stops
    /// producing and returns once every run has ended.
    func produceUntilShutdown() async {
        await withTaskGroup(of: Void.self) { group in
            if settings.intervalRunsEnabled {
                group.addTask { await self.intervalLoop() }
            }
            if settings.fullRunsEnabled {
                group.addTask { await self.dailyLoop() }
            }
            if settings.catchUpRunsEnabled, let changes = redisStateChanges {
                group.addTask { await self.watchRedis(changes) }
            }
            for await id in launches.cancelOnGracefulShutdown() {
                executing.insert(id)
                group.addTask { await self.execute(id) }
            }
            beginStopping()
            group.cancelAll()
            await group.waitForAll()
        }
    }

    func beginStopping() {
        guard lifecycle == .running else { return }
        lifecycle = .stopping
        launchContinuation.finish()
        batcher.close()
        stopContinuation.yield()
        stopContinuation.finish()
        nextIntervalRunAt = nil
        nextFullRunAt = nil
        for run in ledger.running where !executing.contains(run.id) {
            finish(run.id, end: .cancelled)
        }
        let load = batcher.load
        logger.info("scheduler stopping", metadata: [
            "sync.runs_going": "\(ledger.running.count)",
            "sync.batches_queued": "\(load.queued)",
            "sync.batches_in_flight": "\(load.inFlight)",
        ])
    }

    /// Returns `shutdownGracePeriod` (real time) after shutdown began, or when cancelled.
    func shutdownDeadline() async {
        for await _ in stopSignal { break }
        try? await Task.sleep(for: settings.shutdownGracePeriod)
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
            startRun(.interval, trigger: "schedule")
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
            startRun(.full, trigger: "schedule")
        }
    }

    func watchRedis(_ changes: AsyncStream<RedisStateChange>) async {
        for await change in changes where change.to == .ready && Self.isRecovery(from: change.from) {
            logger.info("redis is back; catching up", metadata: ["redis.from": "\(change.from)"])
            startRun(.catchUp, trigger: "redis_ready")
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
