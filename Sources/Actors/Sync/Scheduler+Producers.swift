import Foundation
import Logging

/// The leader's producers: they list upstream's chats (full runs) or select the tracked chats
/// that are stale (interval and catch-up runs) and append the batches to the shared stream with
/// fenced scripts, recording progress (a full run's page cursor) with every append so that the
/// next leader carries the run on from there.
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
                run, lease: lease, end: .interrupted,
                failure: "interrupted: its leader stopped before planning every batch")
            return
        }
        if previousFence == 0 {
            logger.info("sync run started", metadata: ["sync.trigger": "\(run.trigger)"])
        } else {
            logger.notice(
                "sync run taken over from an earlier leader",
                metadata: [
                    "sync.previous_fence": "\(previousFence)", "sync.pages_read": "\(run.pagesRead ?? 0)",
                    "sync.batches_planned": "\(run.counts.batchesPlanned)",
                ])
        }
        metrics.producing(run.kind, true)
        defer { metrics.producing(run.kind, false) }
        let end =
            run.kind.isFull
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
        guard await isLeading(lease) else { return .lostLead }
        var read = await readPage(pageNumber + 1, token: token, logger: logger) { await self.recordSharedError(id, $0) }
        while true {
            pageNumber += 1
            let page: ChatListPage
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
                let message =
                    "page \(pageNumber): \(page.rejectedIDs.count) invalid chat ids skipped: \(sample.joined(separator: ", "))"
                logger.warning(
                    "upstream listed invalid chat ids", metadata: ["sync.page": "\(pageNumber)", "error": "\(message)"])
                await recordSharedError(id, message)
            }
            var accumulator = BatchAccumulator(batchSize: settings.batchSize)
            var batches = accumulator.add(page.chatIDs)
            if let rest = accumulator.flush() { batches.append(rest) }
            let next = page.nextPageToken
            let stuck = next != nil && next == token
            // The next page is listed while this one is appended: upstream's latency and the
            // append overlap. Only the append moves the cursor, so a leader that dies here lists
            // the next page again, never skips it.
            let upcomingToken = stuck ? nil : next
            let upcomingNumber = pageNumber + 1
            async let upcoming = prefetch(upcomingToken, number: upcomingNumber, run: id, logger: logger)
            let progress = SharedRuns.Progress(
                pagesRead: 1, chatsConsidered: page.chatIDs.count, idsRejected: page.rejectedIDs.count,
                cursor: next ?? "")
            let appended = await appendShared(
                record.run, batches: batches, progress: progress, final: next == nil, lease: lease)
            guard appended == .finished else { return appended }
            if stuck {
                return .failed("upstream's chat list does not advance: page \(pageNumber) points to itself")
            }
            guard let next else { return .finished }
            token = next
            guard await isLeading(lease) else { return .lostLead }
            read = await upcoming ?? .cancelled
        }
    }

    /// Page `number` at `token`; nil when there is no next page.
    private func prefetch(_ token: String?, number: Int, run id: RunID, logger: Logger) async -> PageRead? {
        guard let token else { return nil }
        return await readPage(number, token: token, logger: logger) { await self.recordSharedError(id, $0) }
    }

    /// Interval and catch-up runs: the tracked chats that are or will soon be stale.
    func produceSharedStale(_ run: SyncRun, lease: LeaderLease) async -> SharedProducerEnd {
        let now = clock.now()
        var seen: Set<ChatID> = []
        let tracked = await store.trackedChats(since: now.addingTimeInterval(-settings.trackWindow.timeInterval))
            .filter { seen.insert($0).inserted }
        let horizon = now.addingTimeInterval(
            IntervalJitter.longest(interval: settings.updateInterval, jitter: settings.intervalJitter).timeInterval)
        let groupSize = coordinationSettings.appendGroupSize
        var accumulator = BatchAccumulator(batchSize: settings.batchSize)
        var ready: [[ChatID]] = []
        var start = 0
        while start < tracked.count {
            if Task.isCancelled { return .cancelled }
            let chunk = Array(tracked[start..<min(start + settings.selectionChunkSize, tracked.count)])
            start += chunk.count
            let fetchedAt = await store.fetchedAt(of: chunk)
            ready += accumulator.add(
                StaleSelection.due(
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
        let size = coordinationSettings.appendGroupSize
        let groups =
            batches.isEmpty
            ? [[]]
            : stride(from: 0, to: batches.count, by: size).map {
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
                    result = try await runs.append(
                        run.id, kind: run.kind, lease: lease, batches: group, progress: last ? progress : .init(),
                        final: last && final, at: clock.now())
                } catch {
                    if pausedSince == nil {
                        pausedSince = .now
                        runLogger(run).warning(
                            "sync run paused: its batches cannot be appended", metadata: ["error": "\(error)"])
                    }
                    // Polled: nothing signals that Redis takes appends again while it stays ready.
                    do { try await Task.sleep(for: coordinationSettings.pollInterval) } catch { return .cancelled }
                    continue
                }
                if pausedSince != nil {
                    pausedSince = nil
                    runLogger(run).notice("sync run resumed: appending again")
                }
                switch result {
                case .notLeader, .notOwner:
                    return .lostLead
                case .appended(let state, let backlog, let streamLength):
                    metrics.batchesAppended(group.count)
                    if state != .running && state != .queued {
                        // The final append was the run's last word (nothing left to settle).
                        await consumer.runEnded(run.id)
                    }
                    if !(last && final) {
                        await waitForRoom(run.id, backlog: backlog, streamLength: streamLength, lease: lease)
                    }
                }
                break
            }
        }
        return .finished
    }

    /// Waits while run `id` has no room (``SharedRunBooks/mustWaitForRoom(backlog:backlogLimit:streamLength:streamLengthLimit:)``):
    /// the leader does not flood the stream faster than the instances process it. Woken by every
    /// batch this instance settles; other instances' settlements signal nothing here, so it also
    /// looks again after a short wait.
    private func waitForRoom(_ id: RunID, backlog: Int, streamLength: Int, lease: LeaderLease) async {
        var backlog = backlog
        var streamLength = streamLength
        let lengthLimit = max(1, coordinationSettings.streamMaxLength / 2)
        while !Task.isCancelled {
            let limit = coordinationSettings.backlogLimit(
                liveInstances: await liveConsumers(), holdLimit: await consumer.status.holdLimit)
            guard
                SharedRunBooks.mustWaitForRoom(
                    backlog: backlog, backlogLimit: limit, streamLength: streamLength, streamLengthLimit: lengthLimit),
                await isLeading(lease)
            else { return }
            await consumer.nextSettlement(orAfter: coordinationSettings.pollInterval / 2)
            if let current = try? await runs.backlog(of: id) { backlog = current }
            if streamLength >= lengthLimit, let current = try? await runs.trimAcknowledged() { streamLength = current }
        }
    }

    /// Marks the producer ended, retried while Redis is away and the lease holds; false when it
    /// could not be (the next leader then takes the run over).
    private func finishSharedProducer(
        _ run: SyncRun, lease: LeaderLease, end: SharedRuns.ProducerEnd, failure: String?
    ) async -> Bool {
        while !Task.isCancelled, await isLeading(lease) {
            do {
                guard
                    let state = try await runs.finishProducer(
                        run.id, kind: run.kind, lease: lease, end: end, failure: failure, at: clock.now())
                else { return false }
                if state != .running && state != .queued { await consumer.runEnded(run.id) }
                return true
            } catch {
                // Polled, like a paused append.
                do { try await Task.sleep(for: coordinationSettings.pollInterval) } catch { return false }
            }
        }
        return false
    }

    /// Adds an error line to a shared run (best effort).
    func recordSharedError(_ id: RunID, _ message: String) async {
        try? await runs.recordError(id, message, at: clock.now())
    }

    /// The page size asked of upstream: `pageSize`, at least a batch, and at most what one append
    /// script takes (`appendGroupSize` batches), so that a page and the cursor after it are
    /// appended in one atomic step and a new leader never lists a chat twice.
    var listPageSize: Int {
        max(settings.batchSize, min(settings.pageSize, settings.batchSize * coordinationSettings.appendGroupSize))
    }

    /// One page of upstream's chat list, retried with backoff; authorization and other 4xx
    /// failures are not retried since another try cannot fix them. Each failed try is reported
    /// to `recordError`.
    func readPage(
        _ number: Int, token: String?, logger: Logger, recordError: (String) async -> Void
    ) async -> PageRead {
        var attempt = 0
        while true {
            attempt += 1
            if Task.isCancelled { return .cancelled }
            do {
                return .page(try await upstream.listChats(pageSize: listPageSize, pageToken: token))
            } catch {
                if Task.isCancelled { return .cancelled }
                let message = "listing page \(number) failed (attempt \(attempt)): \(error)"
                logger.warning("listing chats failed", metadata: ["sync.page": "\(number)", "error": "\(error)"])
                await recordError(message)
                let retryable = error.code != .unauthorized && error.code != .rejected
                guard retryable, attempt <= settings.pageRetries else {
                    return .failed("listing page \(number) failed after \(attempt) attempts: \(error)")
                }
                let delay = settings.pageBackoff.delay(attempt: attempt, random: &random)
                do {
                    try await clock.sleep(until: clock.now().addingTimeInterval(delay.timeInterval))
                } catch {
                    return .cancelled
                }
            }
        }
    }
}
