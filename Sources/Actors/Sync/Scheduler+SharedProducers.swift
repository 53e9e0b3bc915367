import Foundation
import Logging

/// The leader's producers of shared runs: they list or select chats like the local ones, but
/// append the batches to the shared stream with fenced scripts, recording progress (a full
/// run's page cursor) with every append so that the next leader carries the run on from there.
extension Scheduler {
    /// How a shared run's production ended on this instance.
    enum SharedProducerEnd: Equatable {
        /// Every batch appended; the run ends once they are all processed.
        case finished
        /// Listing failed; recorded on the run.
        case failed(String)
        /// The lease ended or the run was taken over: the next leader carries it on.
        case lostLead
        /// Shutdown: the next leader carries it on.
        case cancelled
    }

    /// Produces shared run `record` as the leader holding `lease`.
    func produceShared(_ record: SharedRunRecord, lease: LeaderLease, previousFence: Int64) async {
        let run = record.run
        var logger = runLogger(run)
        logger[metadataKey: "sync.fence"] = "\(lease.fence)"
        defer {
            if shared.producing[run.id] == lease.fence { shared.producing[run.id] = nil }
        }
        if !run.kind.isFull && previousFence != 0 {
            // The selection of an interval-style run cannot be resumed; the batches its leader
            // appended are still processed, and the next interval run covers the rest.
            logger.notice("run of an earlier leader cannot be resumed; ending it after its batches")
            _ = await finishSharedProducer(
                run, lease: lease, end: .interrupted, failure: "interrupted: its leader stopped before planning every batch")
            return
        }
        if previousFence == 0 {
            logger.info("sync run started", metadata: ["sync.trigger": "\(run.trigger)"])
        } else {
            logger.notice("sync run taken over from an earlier leader", metadata: [
                "sync.previous_fence": "\(previousFence)", "sync.pages_read": "\(run.pagesRead ?? 0)",
                "sync.batches_planned": "\(run.counts.batchesPlanned)",
            ])
        }
        metrics.producing(run.kind, true)
        defer { metrics.producing(run.kind, false) }
        let end = run.kind.isFull
            ? await produceSharedFull(record, lease: lease, logger: logger)
            : await produceSharedStale(run, lease: lease)
        switch end {
        case .finished:
            logger.info("sync run planned; its batches are processed by every instance")
        case .failed(let reason):
            if await finishSharedProducer(run, lease: lease, end: .failed, failure: reason) {
                logger.warning("sync run failed listing chats", metadata: ["sync.failure": "\(reason)"])
            }
        case .lostLead:
            logger.warning("stopped producing: no longer the leader; the next leader carries the run on")
        case .cancelled:
            logger.info("stopped producing (shutting down); the next leader carries the run on")
        }
    }

    /// Full runs: upstream's chat list from the recorded cursor, one append per page (each with
    /// the next page's token), the last one final.
    func produceSharedFull(_ record: SharedRunRecord, lease: LeaderLease, logger: Logger) async -> SharedProducerEnd {
        let id = record.run.id
        var token = record.cursor
        var pageNumber = record.run.pagesRead ?? 0
        while true {
            guard await isLeading(lease) else { return .lostLead }
            pageNumber += 1
            let page: ChatListPage
            let read = await readPage(pageNumber, token: token, logger: logger) { message in
                await self.recordSharedError(id, message)
            }
            switch read {
            case .cancelled:
                return Task.isCancelled ? .cancelled : .lostLead
            case .failed(let reason):
                return .failed(reason)
            case .page(let listed):
                page = listed
            }
            if !page.rejectedIDs.isEmpty {
                let sample = page.rejectedIDs.prefix(5).map { String(reflecting: String($0.prefix(64))) }
                let message = "page \(pageNumber): \(page.rejectedIDs.count) invalid chat ids skipped: \(sample.joined(separator: ", "))"
                logger.warning("upstream listed invalid chat ids", metadata: ["sync.page": "\(pageNumber)", "error": "\(message)"])
                await recordSharedError(id, message)
            }
            var accumulator = BatchAccumulator(batchSize: settings.batchSize)
            var batches = accumulator.add(page.chatIDs)
            if let rest = accumulator.flush() { batches.append(rest) }
            let next = page.nextPageToken
            let stuck = next != nil && next == token
            let progress = SharedRuns.Progress(
                pagesRead: 1, chatsConsidered: page.chatIDs.count, idsRejected: page.rejectedIDs.count, cursor: next ?? "")
            let appended = await appendShared(
                record.run, batches: batches, progress: progress, final: next == nil, lease: lease)
            guard appended == .finished else { return appended }
            if stuck {
                return .failed("upstream's chat list does not advance: page \(pageNumber) points to itself")
            }
            guard let next else { return .finished }
            token = next
        }
    }

    /// Interval and catch-up runs: the tracked chats that are or will soon be stale.
    func produceSharedStale(_ run: SyncRun, lease: LeaderLease) async -> SharedProducerEnd {
        let now = clock.now()
        var seen: Set<ChatID> = []
        let tracked = await store.trackedChats(since: now.addingTimeInterval(-settings.trackWindow.timeInterval))
            .filter { seen.insert($0).inserted }
        let horizon = now.addingTimeInterval(
            IntervalJitter.longest(interval: settings.updateInterval, jitter: settings.intervalJitter).timeInterval)
        let groupSize = coordinator?.settings.appendGroupSize ?? 16
        var accumulator = BatchAccumulator(batchSize: settings.batchSize)
        var ready: [[ChatID]] = []
        var start = 0
        while start < tracked.count {
            if Task.isCancelled { return .cancelled }
            let chunk = Array(tracked[start..<min(start + settings.selectionChunkSize, tracked.count)])
            start += chunk.count
            let fetchedAt = await store.fetchedAt(of: chunk)
            ready += accumulator.add(StaleSelection.due(
                chunk, fetchedAt: fetchedAt, horizon: horizon, staleThreshold: settings.staleThreshold))
            if ready.count >= groupSize {
                let appended = await appendShared(run, batches: ready, progress: .init(), final: false, lease: lease)
                guard appended == .finished else { return appended }
                ready.removeAll()
            }
        }
        if let rest = accumulator.flush() { ready.append(rest) }
        return await appendShared(
            run, batches: ready, progress: .init(chatsConsidered: tracked.count), final: true, lease: lease)
    }

    /// Appends `batches` in groups, `progress` and `final` with the last group, each group
    /// retried while Redis is away (the run pauses) and only while `lease` holds. Waits after
    /// each group while the run's backlog is at its limit. `.finished` when all are in.
    func appendShared(
        _ run: SyncRun, batches: [[ChatID]], progress: SharedRuns.Progress, final: Bool, lease: LeaderLease
    ) async -> SharedProducerEnd {
        guard let coordinator else { return .cancelled }
        let size = coordinator.settings.appendGroupSize
        let groups = batches.isEmpty ? [[]] : stride(from: 0, to: batches.count, by: size).map {
            Array(batches[$0..<min($0 + size, batches.count)])
        }
        var pausedSince: ContinuousClock.Instant?
        for (index, group) in groups.enumerated() {
            let last = index == groups.count - 1
            while true {
                if Task.isCancelled { return .cancelled }
                guard await isLeading(lease) else { return .lostLead }
                let result: SharedRuns.Append
                do {
                    result = try await coordinator.runs.append(
                        run.id, kind: run.kind, lease: lease, batches: group, progress: last ? progress : .init(),
                        final: last && final, at: clock.now())
                } catch {
                    if pausedSince == nil {
                        pausedSince = .now
                        runLogger(run).warning("sync run paused: its batches cannot be appended", metadata: ["error": "\(error)"])
                    }
                    try? await Task.sleep(for: coordinator.settings.pollInterval)
                    continue
                }
                if pausedSince != nil {
                    pausedSince = nil
                    runLogger(run).notice("sync run resumed: appending again")
                }
                switch result {
                case .notLeader, .notOwner:
                    return .lostLead
                case .appended(_, let backlog, let streamLength):
                    metrics.batchesAppended(group.count)
                    if !(last && final) {
                        await waitForRoom(run.id, backlog: backlog, streamLength: streamLength, lease: lease)
                    }
                }
                break
            }
        }
        return .finished
    }

    /// Waits while run `id` has at least as many batches planned and unaccounted for as its
    /// backlog limit allows (the leader does not flood the stream faster than the instances
    /// process it), and while the stream is half full: it is trimmed only up to its oldest
    /// unprocessed entry, so a batch a dead instance left pending holds it until the batch is
    /// claimed, and the `MAXLEN` cap must never be reached.
    private func waitForRoom(_ id: RunID, backlog: Int, streamLength: Int, lease: LeaderLease) async {
        guard let coordinator else { return }
        var backlog = backlog
        var streamLength = streamLength
        let lengthLimit = max(1, coordinator.settings.streamMaxLength / 2)
        while !Task.isCancelled {
            let limit = coordinator.settings.backlogLimit(
                liveInstances: await liveConsumers(), maxBatchesInFlight: settings.maxBatchesInFlight)
            guard backlog >= limit || streamLength >= lengthLimit, await isLeading(lease) else { return }
            try? await Task.sleep(for: coordinator.settings.pollInterval / 2)
            if let current = try? await coordinator.runs.backlog(of: id) { backlog = current }
            if let current = try? await coordinator.runs.trimAcknowledged() { streamLength = current }
        }
    }

    /// Marks the producer ended, retried while Redis is away and the lease holds; false when it
    /// could not be (the next leader then takes the run over).
    private func finishSharedProducer(
        _ run: SyncRun, lease: LeaderLease, end: SharedRuns.ProducerEnd, failure: String?
    ) async -> Bool {
        guard let coordinator else { return false }
        while !Task.isCancelled, await isLeading(lease) {
            do {
                return try await coordinator.runs.finishProducer(
                    run.id, kind: run.kind, lease: lease, end: end, failure: failure, at: clock.now()) != nil
            } catch {
                try? await Task.sleep(for: coordinator.settings.pollInterval)
            }
        }
        return false
    }

    /// Adds an error line to a shared run (best effort).
    func recordSharedError(_ id: RunID, _ message: String) async {
        try? await coordinator?.runs.recordError(id, message, at: clock.now())
    }
}
