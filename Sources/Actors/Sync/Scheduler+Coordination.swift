public import ChatRuntime
import Foundation
import Logging
import Metrics

/// Wiring for a scheduler that shares its work with other instances through Redis
/// (docs/COORDINATION.md).
public struct SyncCoordination: Sendable {
    public var supervisor: RedisSupervisor
    /// The loop the supervisor runs on; the coordination actors run there too.
    public var loop: EventLoop
    public var settings: CoordinationSettings

    public init(supervisor: RedisSupervisor, loop: EventLoop, settings: CoordinationSettings) {
        settings.validate()
        self.supervisor = supervisor
        self.loop = loop
        self.settings = settings
    }
}

extension Scheduler {
    /// What the scheduler keeps about shared runs.
    struct SharedState {
        /// Scheduled instants seen and not yet claimed: claimed once this instance leads (and
        /// only if nobody claimed them), or replaced by the next one.
        var pendingTicks: [CoordinationKeys.TickSlot: Date] = [:]
        /// Manual requests made while Redis was away, handed over once it is back.
        var queuedRequests: [SyncRun] = []
        /// Ids handed out for queued requests that joined another run when handed over.
        var aliases: [RunID: RunID] = [:]
        /// Runs this instance produces, with the fence it produces them under.
        var producing: [RunID: Int64] = [:]
        /// The last state read of recent shared runs, answered while Redis cannot be read.
        var snapshots: [RunID: SyncRun] = [:]
        /// Live consumers counted for the backlog limit, and when.
        var liveConsumers = 1
        var liveConsumersCountedAt: ContinuousClock.Instant?
    }

    // MARK: Ticks and requests

    /// A scheduled instant came (on every instance): claimed now if this instance leads, else
    /// kept until it does.
    func scheduledTick(_ slot: CoordinationKeys.TickSlot, due: Date) async {
        shared.pendingTicks[slot] = due
        await claimPendingTicks()
    }

    /// Claims the pending ticks with the runs they start, while this instance leads.
    func claimPendingTicks() async {
        guard let lease = await elector.lease else { return }
        for (slot, due) in shared.pendingTicks.sorted(by: { $0.value < $1.value }) {
            let kind: SyncRun.Kind =
                switch slot {
                case .full: .full
                case .interval: .interval
                case .catchUp: .catchUp
                }
            let tick = SharedRuns.Tick(slot: slot, due: due, minimumGap: minimumTickGap(slot))
            let trigger = slot == .catchUp ? "redis_ready" : "schedule"
            guard let creation = await createShared(kind, trigger: trigger, lease: lease, tick: tick) else { return }
            var metadata: Logger.Metadata = [
                "sync.kind": "\(kind.rawValue)", "sync.tick": "\(ISO8601Timestamp.string(from: due))",
            ]
            switch creation {
            case .notLeader:
                return
            case .collision:
                continue
            case .started(let id):
                metadata["sync.run_id"] = "\(id)"
                logger.info("claimed the scheduled run", metadata: metadata)
            case .joined(let id), .skipped(let id):
                metadata["sync.run_id"] = "\(id)"
                logger.info("claimed the scheduled run; the run going covers it", metadata: metadata)
            case .alreadyClaimed:
                logger.info("scheduled run already claimed by a leader; not run again", metadata: metadata)
            }
            if shared.pendingTicks[slot] == due { shared.pendingTicks[slot] = nil }
        }
        await adoptActiveRuns(lease)
    }

    /// How close after the last claimed instant a tick of `slot` may still be claimed.
    private func minimumTickGap(_ slot: CoordinationKeys.TickSlot) -> Duration {
        switch slot {
        case .full:
            return .milliseconds(1)
        case .interval:
            // The shortest wait between two interval ticks of one instance: a new leader whose own
            // tick comes soon after the old leader's does not run it again.
            let factor = max(0, 1 - settings.intervalJitter)
            return .milliseconds(Int64(settings.updateInterval.timeInterval * factor * 1000))
        case .catchUp:
            return coordinationSettings.catchUpMinGap
        }
    }

    /// A manual full run: recorded in Redis (or joined), produced by the leader; kept here while
    /// Redis is away.
    func requestSharedFullRun(trigger: String) async -> RunID {
        if let queued = shared.queuedRequests.indices.first {
            shared.queuedRequests[queued].joinedRequests += 1
            return shared.queuedRequests[queued].id
        }
        if let creation = await createShared(.manualFull, trigger: trigger, lease: nil, tick: nil) {
            switch creation {
            case .started(let id), .joined(let id), .skipped(let id):
                if let lease = await elector.lease { await adoptActiveRuns(lease) }
                return id
            case .alreadyClaimed, .notLeader, .collision:
                break
            }
        }
        let now = clock.now()
        var run = SyncRun(
            id: RunID(kind: .manualFull, startedAt: now, random: &random), kind: .manualFull, trigger: trigger,
            startedAt: now)
        run.state = .queued
        shared.queuedRequests.append(run)
        logger.warning(
            "redis is unavailable: the full refresh request is kept until it is back",
            metadata: [
                "sync.run_id": "\(run.id)"
            ])
        return run.id
    }

    /// Hands the requests kept while Redis was away over to Redis.
    func forwardQueuedRequests() async {
        while let request = shared.queuedRequests.first {
            guard
                let creation = await createShared(
                    .manualFull, trigger: request.trigger, lease: nil, tick: nil, id: request.id)
            else { return }
            switch creation {
            case .started(let id), .joined(let id), .skipped(let id):
                if id != request.id { shared.aliases[request.id] = id }
                logger.info(
                    "handed over a full refresh request kept while redis was away",
                    metadata: [
                        "sync.run_id": "\(id)", "sync.requested_id": "\(request.id)",
                    ])
            case .alreadyClaimed, .notLeader, .collision:
                return
            }
            shared.queuedRequests.removeFirst()
        }
    }

    /// Records a new shared run (a fresh id on collision); nil when Redis did not answer.
    private func createShared(
        _ kind: SyncRun.Kind, trigger: String, lease: LeaderLease?, tick: SharedRuns.Tick?, id given: RunID? = nil
    ) async -> SharedRuns.Creation? {
        let now = clock.now()
        var id = given ?? RunID(kind: kind, startedAt: now, random: &random)
        for _ in 0..<4 {
            let creation: SharedRuns.Creation
            do {
                creation = try await runs.create(id, kind: kind, trigger: trigger, at: now, lease: lease, tick: tick)
            } catch {
                logger.debug("recording a shared run failed", metadata: ["error": "\(error)"])
                return nil
            }
            guard creation == .collision else {
                if case .started = creation { runsStarted += 1 }
                return creation
            }
            id = RunID(kind: kind, startedAt: now, random: &random)
        }
        return .collision
    }

    // MARK: Leadership

    /// Every maintenance interval: hand queued requests over and, while leading, claim ticks and
    /// take over the runs that need a producer. Polled: a request recorded by another instance
    /// (`queued` in Redis) signals nothing here.
    func maintainCoordination() async {
        while !Task.isCancelled {
            await forwardQueuedRequests()
            if let lease = await elector.lease {
                await claimPendingTicks()
                await adoptActiveRuns(lease)
            }
            // Polled (see the doc comment): a run recorded by another instance signals nothing here.
            do { try await Task.sleep(for: coordinationSettings.maintenanceInterval) } catch { return }
        }
    }

    /// Acts on leadership at once: a new leader claims the ticks it kept and takes the runs over
    /// without waiting for the next maintenance.
    func followLeadership() async {
        for await lease in elector.leaseChanges {
            guard let lease else { continue }
            logger.info("leading the sync runs", metadata: ["sync.fence": "\(lease.fence)"])
            await claimPendingTicks()
            await adoptActiveRuns(lease)
        }
    }

    /// Takes over every active run this leader does not produce yet: queued ones, and those an
    /// earlier leader was producing.
    func adoptActiveRuns(_ lease: LeaderLease) async {
        guard lifecycle == .running || lifecycle == .idle else { return }
        guard let active = try? await runs.activeRuns() else { return }
        for (slot, id) in active where shared.producing[id] != lease.fence {
            let adoption: SharedRuns.Adoption
            do {
                adoption = try await runs.adopt(id, slot: slot, lease: lease, at: clock.now())
            } catch {
                return
            }
            switch adoption {
            case .adopted(let record, let previousFence):
                guard shared.producing[id] != lease.fence else { continue }
                shared.producing[id] = lease.fence
                launchContinuation.yield(Launch(record: record, lease: lease, previousFence: previousFence))
            case .reaped:
                logger.warning("failed a run whose batches never all came back", metadata: ["sync.run_id": "\(id)"])
            case .notLeader:
                return
            case .gone, .ended, .settling:
                continue
            }
        }
    }

    /// Whether `lease` is still this instance's valid lease.
    func isLeading(_ lease: LeaderLease) async -> Bool {
        await elector.lease?.value == lease.value
    }

    // MARK: Reading shared runs

    /// A shared run by id: a request kept here, or the record in Redis; while Redis cannot be
    /// read, the run as this instance last read it.
    func sharedRun(_ id: RunID) async -> SyncRun? {
        if let queued = shared.queuedRequests.first(where: { $0.id == id }) { return queued }
        let resolved = shared.aliases[id] ?? id
        do {
            let run = try await runs.run(resolved)
            if let run { remember(run) }
            return run
        } catch {
            return shared.snapshots[resolved]
        }
    }

    /// Keeps the last read of a run (the 50 most recently started ones).
    private func remember(_ run: SyncRun) {
        shared.snapshots[run.id] = run
        if shared.snapshots.count > 50, let oldest = shared.snapshots.values.min(by: { $0.startedAt < $1.startedAt }) {
            shared.snapshots[oldest.id] = nil
        }
    }

    /// The shared runs (going, then ended) and the coordination status.
    func sharedStatus() async -> (running: [SyncRun], recent: [SyncRun], coordination: CoordinationStatus) {
        var redisError: String?
        var recentRuns: [SyncRun] = []
        do {
            recentRuns = try await runs.recent(limit: settings.historyLimit * 2)
            for run in recentRuns { remember(run) }
        } catch {
            redisError = "\(error)"
            recentRuns = shared.snapshots.values.sorted { $0.startedAt > $1.startedAt }
        }
        var leader: CoordinationStatus.Leader?
        var stream: CoordinationStatus.Stream?
        do {
            leader = try await self.stream.leader()
            stream = try await self.stream.status()
        } catch {
            redisError = redisError ?? "\(error)"
        }
        let lease = await elector.lease
        let running =
            shared.queuedRequests + recentRuns.filter { $0.state == .running || $0.state == .queued }.reversed()
        let recent = Array(
            recentRuns.filter { $0.state != .running && $0.state != .queued }.prefix(settings.historyLimit))
        let status = CoordinationStatus(
            instanceID: coordinationSettings.instanceID,
            isLeader: lease != nil,
            fence: lease?.fence,
            leader: leader,
            lockTTLSeconds: coordinationSettings.lockTTL.timeInterval,
            stream: stream,
            consumer: await consumer.status,
            producing: shared.producing.keys.map(\.rawValue).sorted(),
            pendingTicks: Dictionary(uniqueKeysWithValues: shared.pendingTicks.map { ($0.key.rawValue, $0.value) }),
            queuedRequests: shared.queuedRequests.map(\.id.rawValue),
            redisError: redisError)
        return (running, recent, status)
    }

    /// Live instances reading the stream (counted at most every 5 s), for the backlog limit.
    func liveConsumers() async -> Int {
        if let counted = shared.liveConsumersCountedAt, ContinuousClock.now - counted < .seconds(5) {
            return shared.liveConsumers
        }
        if let live = try? await stream.liveConsumers() {
            shared.liveConsumers = max(1, live)
        }
        shared.liveConsumersCountedAt = ContinuousClock.now
        return shared.liveConsumers
    }
}
