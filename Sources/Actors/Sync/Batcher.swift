public import ChatRuntime
import Foundation
public import Logging
public import Metrics
public import ServiceLifecycle

/// Refreshes batches of chats: per batch one upstream `batchGet` and one `storeBatch` (one
/// pipelined Redis write), with as many batches in flight as a ``ConcurrencyLimit`` allows. The
/// limit adapts to upstream's latency and overload answers (429, 5xx, timeouts), up to
/// PARTICIPANTS_MAX_BATCHES_IN_FLIGHT.
///
/// Batches come from the ``BatchStreamConsumer`` through ``submit(_:)``, which never waits: the
/// consumer holds at most twice the current limit, so what waits here is bounded by it. Every
/// batch accepted is reported exactly once on ``outcomes``, in the order the batches finish.
///
/// A failed upstream call is not retried here: the upstream client already retries each call
/// within PARTICIPANTS_MAX_API_TIMEOUT, and the chats stay stale, so the next interval run picks
/// the tracked ones up again.
///
/// A `Service`: it runs until graceful shutdown, by which time the consumer has stopped and waited
/// for the batches it handed over (within the shutdown grace period); what is still here then is
/// cancelled and reported as skipped (its stream entries stay pending for another instance).
public actor Batcher: Service {
    /// What the batcher is doing right now.
    public struct Load: Sendable, Hashable {
        /// Accepted and waiting for a slot.
        public var queued: Int
        /// Being fetched or stored.
        public var inFlight: Int
        /// The most batches ever in flight at once.
        public var peakInFlight: Int
        /// The current concurrency limit.
        public var limit: Int
    }

    /// What other actors read and ``submit(_:)`` writes, under one lock.
    private struct Shared {
        var load: Load
        /// ``close()`` was called: no more batches are taken.
        var closed = false
        /// Submitted, not yet taken by the loop.
        var inbox: [SyncBatch] = []
    }

    private enum Event: Sendable {
        /// Batches were submitted (they wait in the inbox, so none is lost if the loop ends first).
        case submitted
        /// A batch finished (its outcome is already reported): what it says about upstream.
        case finished(ConcurrencyLimit.Sample, startedWith: Int)
        /// ``close()``: finish what was accepted, then return.
        case close
    }

    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let loop: EventLoop
    private let upstream: any ParticipantsUpstream
    private let store: any ParticipantsStore
    private let clock: any SyncClock
    private let logger: Logger
    private let events: AsyncStream<Event>
    private let eventInput: AsyncStream<Event>.Continuation
    /// Every outcome, once; read by one consumer.
    public nonisolated let outcomes: AsyncStream<BatchOutcome>
    private let outcomeOutput: AsyncStream<BatchOutcome>.Continuation
    private let limitGauge: Gauge
    private var concurrency: ConcurrencyLimit
    private var waiting: [SyncBatch] = []
    private var running = 0
    /// Read from other actors (the consumer sizes its holdings by the limit, the status route).
    private let shared: AnnotatedMutex<Shared>
    private var started = false
    private var closing = false

    /// How many error lines one batch contributes to its run at most.
    static let errorLinesPerBatch = 5

    public init(
        upstream: any ParticipantsUpstream,
        store: any ParticipantsStore,
        clock: any SyncClock,
        loop: EventLoop,
        concurrency: ConcurrencyLimit.Settings,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) {
        unownedExecutor = loop.asUnownedSerialExecutor()
        self.loop = loop
        self.upstream = upstream
        self.store = store
        self.clock = clock
        self.logger = logger
        self.concurrency = ConcurrencyLimit(settings: concurrency)
        (events, eventInput) = AsyncStream.makeStream(of: Event.self)
        (outcomes, outcomeOutput) = AsyncStream.makeStream(of: BatchOutcome.self)
        limitGauge = Gauge(label: "sync_batch_concurrency_limit", factory: metricsFactory)
        shared = AnnotatedMutex(
            Shared(load: Load(queued: 0, inFlight: 0, peakInFlight: 0, limit: self.concurrency.limit)))
    }

    /// Hands `batch` over; false once the batcher has stopped (the batch is then not processed and
    /// its stream entry stays pending).
    @discardableResult
    public nonisolated func submit(_ batch: SyncBatch) -> Bool {
        let accepted = shared.withLock { shared in
            guard !shared.closed else { return false }
            shared.load.queued += 1
            shared.inbox.append(batch)
            return true
        }
        guard accepted else { return false }
        eventInput.yield(.submitted)
        return true
    }

    /// Stops taking batches; ``run()`` returns once the accepted ones are finished.
    public nonisolated func close() {
        shared.withLock { $0.closed = true }
        eventInput.yield(.close)
    }

    public nonisolated var load: Load {
        shared.withLock { $0.load }
    }

    /// The current concurrency limit (batches in flight allowed now).
    public nonisolated var limit: Int {
        shared.withLock { $0.load.limit }
    }

    // MARK: Service

    public func run() async {
        precondition(!started, "Batcher.run may only be called once")
        started = true
        limitGauge.record(concurrency.limit)
        let loop = loop
        // A discarding group: a batch's child task is freed when it ends. A plain task group keeps
        // every finished child until `next()` reaps it, and nothing here waits on results (they
        // come back as events), so a group that never reaps held each batch's task, about 10 KB,
        // until shutdown: 200 bytes per chat refreshed, 200 MB a day for a daily 1M-chat run.
        await withDiscardingTaskGroup { group in
            // Graceful shutdown ends the event stream; what is in flight then is cancelled below.
            for await event in events.cancelOnGracefulShutdown() {
                switch event {
                case .submitted:
                    waiting += shared.withLock { shared in
                        defer { shared.inbox.removeAll() }
                        return shared.inbox
                    }
                case .close:
                    closing = true
                case .finished(let sample, let startedWith):
                    running -= 1
                    let before = concurrency.limit
                    let limit = concurrency.record(sample, inFlight: startedWith)
                    if limit != before {
                        limitGauge.record(limit)
                        logger.debug(
                            "batch concurrency limit changed",
                            metadata: [
                                "sync.limit": "\(limit)", "sync.previous_limit": "\(before)",
                            ])
                    }
                    shared.withLock { shared in
                        shared.load.inFlight = running
                        shared.load.limit = limit
                    }
                }
                // Started in arrival order while the limit has room.
                while running < concurrency.limit, !waiting.isEmpty {
                    let batch = waiting.removeFirst()
                    running += 1
                    let startedWith = running
                    shared.withLock { shared in
                        shared.load.queued -= 1
                        shared.load.inFlight = running
                        shared.load.peakInFlight = max(shared.load.peakInFlight, running)
                    }
                    let input = eventInput
                    let output = outcomeOutput
                    group.addTask(executorPreference: loop) {
                        let (outcome, sample) = await self.process(batch)
                        // Reported from here, so a batch cancelled at shutdown is reported too.
                        output.yield(outcome)
                        input.yield(.finished(sample, startedWith: startedWith))
                    }
                }
                if closing, running == 0, waiting.isEmpty { break }
            }
            // Shutdown (or close with nothing left): what is in flight is cancelled and, like
            // the batches still waiting, reported as skipped.
            group.cancelAll()
        }
        waiting += shared.withLock { shared in
            shared.closed = true
            defer { shared.inbox.removeAll() }
            return shared.inbox
        }
        eventInput.finish()
        for batch in waiting {
            outcomeOutput.yield(.skipped(batch))
        }
        waiting.removeAll()
        shared.withLock { shared in
            shared.load.queued = 0
            shared.load.inFlight = 0
        }
        outcomeOutput.finish()
    }

    // MARK: One batch

    /// One batch, end to end, and what it says about upstream's capacity. Never throws: whatever
    /// happens is in the outcome, which carries the batch's stream delivery.
    nonisolated func process(_ batch: SyncBatch) async -> (BatchOutcome, ConcurrencyLimit.Sample) {
        var (outcome, sample) = await refresh(batch)
        outcome.delivery = batch.delivery
        return (outcome, sample)
    }

    private nonisolated func refresh(_ batch: SyncBatch) async -> (BatchOutcome, ConcurrencyLimit.Sample) {
        var requested: [ChatID] = []
        var requestedSet: Set<ChatID> = []
        requested.reserveCapacity(batch.chats.count)
        for chat in batch.chats where requestedSet.insert(chat).inserted { requested.append(chat) }

        let response: BatchGetResponse
        let callStarted = ContinuousClock.now
        do {
            response = try await upstream.batchGet(requested)
        } catch {
            if Task.isCancelled {
                return (
                    BatchOutcome(
                        runID: batch.runID, batchNumber: batch.number, result: .skipped, chatsSkipped: requested.count),
                    .ignored
                )
            }
            batchLogger(batch).warning("batch failed upstream", metadata: ["error": "\(error)"])
            let outcome = BatchOutcome(
                runID: batch.runID, batchNumber: batch.number, result: .failed, chatsFailed: requested.count,
                errors: ["batch \(batch.number) (\(requested.count) chats): \(error)"])
            return (outcome, Self.sample(for: error))
        }
        let latency = ContinuousClock.now - callStarted

        let answer = BatchAnswer(requested: requested, response: response)
        var errors: [String] = []
        if !response.rejected.isEmpty || !answer.missing.isEmpty || answer.unexpected > 0 {
            errors = report(answer, response: response, batch: batch)
        }

        let fetchedAt = clock.now()
        let entries = answer.found.map { ParticipantsEntry($0, fetchedAt: fetchedAt) }
        var result = BatchOutcome.Result.written
        if !entries.isEmpty || !answer.notFound.isEmpty,
            await store.storeBatch(entries, notFound: answer.notFound) == .deferred
        {
            result = .deferred
        }
        let outcome = BatchOutcome(
            runID: batch.runID, batchNumber: batch.number, result: result,
            chatsRefreshed: entries.count, chatsNotFound: answer.notFound.count,
            chatsFailed: answer.failedCount, errors: errors)
        return (outcome, .answered(latency: latency))
    }

    /// Logs what was wrong with an answer and returns the run's error lines for it (bounded).
    private nonisolated func report(_ answer: BatchAnswer, response: BatchGetResponse, batch: SyncBatch) -> [String] {
        let logger = batchLogger(batch)
        var errors: [String] = []
        for rejected in response.rejected {
            logger.warning("upstream sent a malformed chat", metadata: ["error": "\(rejected)"])
            errors.append("batch \(batch.number): \(rejected)")
        }
        if !answer.missing.isEmpty {
            let sample = answer.missing.prefix(10).map(\.rawValue).joined(separator: ", ")
            logger.warning(
                "upstream left chats out of its answer",
                metadata: ["sync.chats_missing": "\(answer.missing.count)", "sync.sample": "\(sample)"])
            errors.append(
                "batch \(batch.number): \(answer.missing.count) chats missing from upstream's answer: \(sample)")
        }
        if answer.unexpected > 0 {
            logger.notice(
                "upstream answered for chats not asked for; ignored", metadata: ["sync.chats": "\(answer.unexpected)"])
        }
        if errors.count > Self.errorLinesPerBatch {
            let more = errors.count - (Self.errorLinesPerBatch - 1)
            errors = errors.prefix(Self.errorLinesPerBatch - 1) + ["batch \(batch.number): \(more) more errors"]
        }
        return errors
    }

    /// What a failed call says about upstream's capacity: 429, 5xx, timeouts and an open
    /// circuit are overload; a wrong token, a rejected request or a malformed body are not.
    static func sample(for error: UpstreamError) -> ConcurrencyLimit.Sample {
        switch error.code {
        case .rateLimited, .server, .timeout, .circuitOpen: .overloaded
        case .connection, .dns, .tls, .malformed, .unauthorized, .rejected: .ignored
        }
    }

    private nonisolated func batchLogger(_ batch: SyncBatch) -> Logger {
        var logger = logger
        logger[metadataKey: "sync.run_id"] = "\(batch.runID)"
        logger[metadataKey: "sync.batch"] = "\(batch.number)"
        return logger
    }
}
