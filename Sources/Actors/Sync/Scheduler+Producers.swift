import Foundation
import Logging

extension Scheduler {
    /// Hands `chats` to the batcher as the run's next batch; false when the batcher refused it
    /// (shutdown).
    func submit(_ chats: [ChatID], for id: RunID) async -> Bool {
        var number = 0
        ledger.update(id) { run in
            run.counts.batchesPlanned += 1
            run.counts.chatsPlanned += chats.count
            number = run.counts.batchesPlanned
        }
        do {
            try await batcher.submit(SyncBatch(runID: id, number: number, chats: chats))
            return true
        } catch {
            ledger.update(id) { run in
                run.counts.batchesPlanned -= 1
                run.counts.chatsPlanned -= chats.count
            }
            return false
        }
    }

    /// Interval and catch-up runs: the tracked chats that are stale, or will be by the time the
    /// next interval run may start, or have no entry.
    func produceStaleRun(_ id: RunID) async -> ProducerEnd {
        let now = clock.now()
        var seen: Set<ChatID> = []
        let tracked = await store.trackedChats(since: now.addingTimeInterval(-settings.trackWindow.timeInterval))
            .filter { seen.insert($0).inserted }
        ledger.update(id) { $0.counts.chatsConsidered = tracked.count }
        let horizon = now.addingTimeInterval(
            IntervalJitter.longest(interval: settings.updateInterval, jitter: settings.intervalJitter).timeInterval)
        var accumulator = BatchAccumulator(batchSize: settings.batchSize)
        var start = 0
        while start < tracked.count {
            if Task.isCancelled { return .cancelled }
            let chunk = Array(tracked[start..<min(start + settings.selectionChunkSize, tracked.count)])
            start += chunk.count
            let fetchedAt = await store.fetchedAt(of: chunk)
            let due = StaleSelection.due(
                chunk, fetchedAt: fetchedAt, horizon: horizon, staleThreshold: settings.staleThreshold)
            for batch in accumulator.add(due) {
                guard await submit(batch, for: id) else { return .cancelled }
            }
        }
        if let last = accumulator.flush(), !(await submit(last, for: id)) { return .cancelled }
        return .finished
    }

    /// Full runs: every chat upstream lists, page by page, each page's chats handed over before
    /// the next page is read (the batcher's buffer paces the reading).
    func produceFullRun(_ id: RunID, logger: Logger) async -> ProducerEnd {
        var accumulator = BatchAccumulator(batchSize: settings.batchSize)
        var token: String?
        var pageNumber = 0
        while true {
            pageNumber += 1
            let page: ChatListPage
            switch await readPage(pageNumber, token: token, logger: logger, recordError: { self.ledger.recordError(id, $0, at: self.clock.now()) }) {
            case .cancelled:
                return .cancelled
            case .failed(let reason):
                // The chats listed so far still get their refresh.
                if let rest = accumulator.flush(), !(await submit(rest, for: id)) { return .cancelled }
                return .failed(reason)
            case .page(let read):
                page = read
            }
            ledger.update(id) { run in
                run.pagesRead = (run.pagesRead ?? 0) + 1
                run.counts.chatsConsidered += page.chatIDs.count
                run.counts.idsRejected += page.rejectedIDs.count
            }
            if !page.rejectedIDs.isEmpty {
                let sample = page.rejectedIDs.prefix(5).map { String(reflecting: String($0.prefix(64))) }
                let message = "page \(pageNumber): \(page.rejectedIDs.count) invalid chat ids skipped: \(sample.joined(separator: ", "))"
                logger.warning("upstream listed invalid chat ids", metadata: ["sync.page": "\(pageNumber)", "error": "\(message)"])
                ledger.recordError(id, message, at: clock.now())
            }
            for batch in accumulator.add(page.chatIDs) {
                guard await submit(batch, for: id) else { return .cancelled }
            }
            guard let next = page.nextPageToken else { break }
            if next == token {
                if let rest = accumulator.flush(), !(await submit(rest, for: id)) { return .cancelled }
                return .failed("upstream's chat list does not advance: page \(pageNumber) points to itself")
            }
            token = next
        }
        if let last = accumulator.flush(), !(await submit(last, for: id)) { return .cancelled }
        return .finished
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
                return .page(try await upstream.listChats(pageSize: settings.pageSize, pageToken: token))
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
