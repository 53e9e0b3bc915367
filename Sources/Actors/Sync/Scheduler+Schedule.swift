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
            if let coordinator {
                group.addTask { await coordinator.elector.run() }
                group.addTask { await coordinator.consumer.run() }
                group.addTask { await self.maintainCoordination() }
            }
            for await launch in launches.cancelOnGracefulShutdown() {
                switch launch {
                case .local(let id):
                    executing.insert(id)
                    group.addTask { await self.execute(id) }
                case .shared(let record, let lease, let previousFence):
                    group.addTask { await self.produceShared(record, lease: lease, previousFence: previousFence) }
                }
            }
            beginStopping()
            group.cancelAll()
            await group.waitForAll()
        }
        // Graceful shutdown (not cancellation, which is how a dying instance behaves): hand the
        // lead over now rather than after the lock's TTL; the next leader carries the runs on.
        if let coordinator, !Task.isCancelled {
            await coordinator.elector.release()
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
            if coordinator != nil {
                await scheduledTick(.interval, due: due)
            } else {
                startRun(.interval, trigger: "schedule")
            }
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
            if coordinator != nil {
                await scheduledTick(.full, due: due)
            } else {
                startRun(.full, trigger: "schedule")
            }
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
