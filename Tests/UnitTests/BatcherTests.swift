import ChatRuntime
import Foundation
import MetricsTestKit
import TestSupport
import Testing

@testable import Actors

@Suite("Batcher", .timeLimit(.minutes(1)))
struct BatcherTests {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)
    static let runID = RunID(rawValue: "full-test")

    struct Rig {
        let clock = ManualSyncClock(now: BatcherTests.now)
        let loop = EventLoop(name: "batcher-tests")
        let upstream: FakeUpstream
        let store: FakeStore
        let batcher: Batcher
        let metrics = TestMetrics()
        let outcomes = OutcomeLog()

        init(
            chats: [ChatID], inFlight: Int = 2, adaptive: ConcurrencyLimit.Settings? = nil,
            upstreamGate: AsyncGate = AsyncGate(open: true), storeGate: AsyncGate = AsyncGate(open: true)
        ) {
            upstream = FakeUpstream(chats: chats, batchGate: upstreamGate)
            store = FakeStore(gate: storeGate)
            batcher = Batcher(
                upstream: upstream, store: store, clock: clock, loop: loop,
                concurrency: adaptive ?? .init(mode: .fixed, maximum: inFlight), metricsFactory: metrics,
                logger: SyncDoubles.logger)
        }

        /// Runs the batcher and collects every outcome; the task ends once both are done.
        func start() -> Task<Void, Never> {
            let outcomes = outcomes
            let batcher = batcher
            // The collector is a task of its own: cancelling the batcher must not stop it.
            let collector = Task {
                for await outcome in batcher.outcomes { await outcomes.append(outcome) }
            }
            let runner = Task { await batcher.run() }
            return Task {
                await withTaskCancellationHandler {
                    await runner.value
                } onCancel: {
                    runner.cancel()
                }
                await collector.value
            }
        }

        func batch(_ number: Int, _ chats: [ChatID]) -> SyncBatch {
            SyncBatch(runID: BatcherTests.runID, number: number, chats: chats)
        }
    }

    @Test func refreshesEachBatchWithOneUpstreamCallAndOneStoreWrite() async throws {
        let chats = SyncDoubles.chats(25)
        let rig = Rig(chats: chats)
        let running = rig.start()
        for (index, start) in stride(from: 0, to: 25, by: 10).enumerated() {
            #expect(rig.batcher.submit(rig.batch(index + 1, Array(chats[start..<min(start + 10, 25)]))))
        }
        rig.batcher.close()
        await running.value
        let outcomes = await rig.outcomes.all
        #expect(outcomes.count == 3)
        #expect(outcomes.allSatisfy { $0.result == .written && $0.chatsFailed == 0 && $0.errors.isEmpty })
        #expect(outcomes.map(\.chatsRefreshed).reduce(0, +) == 25)
        #expect(rig.upstream.batchCalls.count == 3)
        #expect(rig.store.storeCalls.count == 3)
        #expect(rig.store.writes == Dictionary(uniqueKeysWithValues: chats.map { ($0, 1) }))
        let fetched = await rig.store.fetchedAt(of: chats)
        #expect(fetched.values.allSatisfy { $0 == Self.now })
    }

    @Test func partialAnswerSortsEveryChatOnce() async throws {
        let known = SyncDoubles.chats(6)
        let unknown = SyncDoubles.chat("gone")
        let rig = Rig(chats: known)
        rig.upstream.state.withLock { state in
            state.omitted = [known[1]]
            state.malformed = [known[2]]
        }
        let running = rig.start()
        // A duplicate in the batch is asked for once.
        #expect(rig.batcher.submit(rig.batch(1, [known[0], known[1], known[2], unknown, known[3], known[0]])))
        rig.batcher.close()
        await running.value
        let outcome = try #require(await rig.outcomes.all.first)
        #expect(outcome.result == .written)
        #expect(outcome.chatsRefreshed == 2)
        #expect(outcome.chatsNotFound == 1)
        #expect(outcome.chatsFailed == 2)
        #expect(outcome.errors.contains { $0.contains("malformed") && $0.contains(known[2].rawValue) })
        #expect(outcome.errors.contains { $0.contains("missing") && $0.contains(known[1].rawValue) })
        #expect(rig.upstream.batchCalls == [[known[0], known[1], known[2], unknown, known[3]]])
        let calls = rig.store.storeCalls
        #expect(calls.count == 1)
        #expect(calls.first?.entries == [known[0], known[3]])
        #expect(calls.first?.notFound == [unknown])
    }

    @Test func answerSortingIgnoresWhatWasNotAskedFor() {
        let asked = SyncDoubles.chats(3)
        let stranger = SyncDoubles.chat("stranger")
        let response = BatchGetResponse(
            chats: [
                SyncDoubles.upstreamChat(asked[0]), SyncDoubles.upstreamChat(stranger),
                SyncDoubles.upstreamChat(asked[0]),
            ],
            notFound: [asked[0].rawValue, asked[1].rawValue, "not a {valid} id", stranger.rawValue],
            rejected: [UpstreamDecodingError(reason: .wrongType, path: "$.chats[3]", detail: "no chat_id")])
        let answer = BatchAnswer(requested: asked, response: response)
        #expect(answer.found.map(\.chatID) == [asked[0]])
        #expect(answer.notFound == [asked[1]])
        #expect(answer.missing == [asked[2]])
        #expect(answer.failedCount == 1)
        #expect(answer.unexpected == 3)
    }

    @Test func failedUpstreamCallWritesNothing() async throws {
        let chats = SyncDoubles.chats(20)
        let rig = Rig(chats: chats)
        rig.upstream.state.withLock { $0.failBatchesWith = [chats[12]] }
        let running = rig.start()
        #expect(rig.batcher.submit(rig.batch(1, Array(chats[0..<10]))))
        #expect(rig.batcher.submit(rig.batch(2, Array(chats[10..<20]))))
        rig.batcher.close()
        await running.value
        let outcomes = await rig.outcomes.all.sorted { $0.batchNumber < $1.batchNumber }
        #expect(outcomes.map(\.result) == [.written, .failed])
        #expect(outcomes[1].chatsFailed == 10)
        #expect(outcomes[1].chatsRefreshed == 0)
        #expect(outcomes[1].errors.count == 1)
        #expect(outcomes[1].errors.first?.contains("503") == true)
        #expect(Set(rig.store.writes.keys) == Set(chats[0..<10]))
        #expect(rig.store.storeCalls.count == 1)
    }

    @Test func deferredWritesAreReportedAsSuch() async throws {
        let chats = SyncDoubles.chats(3)
        let rig = Rig(chats: chats)
        rig.store.state.withLock { $0.outcome = .deferred }
        let running = rig.start()
        #expect(rig.batcher.submit(rig.batch(1, chats)))
        rig.batcher.close()
        await running.value
        #expect(await rig.outcomes.all.map(\.result) == [.deferred])
    }

    @Test func theLimitBoundsTheBatchesInFlight() async throws {
        let chats = SyncDoubles.chats(200)
        let gate = AsyncGate()
        let rig = Rig(chats: chats, inFlight: 2, storeGate: gate)
        let running = rig.start()
        let batcher = rig.batcher
        for number in 1...20 {
            let start = (number - 1) * 10
            #expect(
                batcher.submit(SyncBatch(runID: Self.runID, number: number, chats: Array(chats[start..<start + 10]))))
        }
        // Two batches stuck writing, eighteen waiting for a slot.
        #expect(
            await eventually(timeout: .seconds(5)) {
                rig.store.writing == 2 && batcher.load.queued == 18
            })
        #expect(rig.upstream.batchCalls.count == 2)
        #expect(batcher.load.inFlight == 2)

        gate.open()
        batcher.close()
        await running.value
        #expect(await rig.outcomes.all.count == 20)
        #expect(rig.store.writes.count == 200)
        #expect(batcher.load.peakInFlight == 2)
        #expect(rig.upstream.peakInFlight <= 2)
    }

    @Test func overloadAnswersLowerTheAdaptiveLimit() async throws {
        let chats = SyncDoubles.chats(200)
        let rig = Rig(chats: chats, adaptive: .init(mode: .adaptive, minimum: 1, maximum: 16, initial: 8))
        // Every batch fails with a 503: upstream is overloaded.
        rig.upstream.state.withLock { $0.failBatchesWith = Set(chats) }
        let running = rig.start()
        for number in 1...20 {
            let start = (number - 1) * 10
            #expect(rig.batcher.submit(rig.batch(number, Array(chats[start..<start + 10]))))
        }
        rig.batcher.close()
        await running.value
        #expect(await rig.outcomes.all.allSatisfy { $0.result == .failed })
        #expect(rig.batcher.limit < 8)
        #expect(try rig.metrics.expectGauge("sync_batch_concurrency_limit").lastValue ?? 99 < 8)
    }

    @Test func anInstantUpstreamTakesTheAdaptiveLimitToItsCeiling() async throws {
        let chats = SyncDoubles.chats(2000)
        let rig = Rig(chats: chats, adaptive: .init(mode: .adaptive, minimum: 1, maximum: 16, initial: 2))
        let running = rig.start()
        for number in 1...200 {
            let start = (number - 1) * 10
            #expect(rig.batcher.submit(rig.batch(number, Array(chats[start..<start + 10]))))
        }
        rig.batcher.close()
        await running.value
        #expect(await rig.outcomes.all.count == 200)
        #expect(rig.batcher.limit == 16)
    }

    @Test func cancellationReportsEveryAcceptedBatch() async throws {
        let chats = SyncDoubles.chats(60)
        let gate = AsyncGate()
        let rig = Rig(chats: chats, inFlight: 2, upstreamGate: gate)
        let running = rig.start()
        for number in 1...5 {
            let start = (number - 1) * 10
            #expect(rig.batcher.submit(rig.batch(number, Array(chats[start..<start + 10]))))
        }
        #expect(await eventually(timeout: .seconds(5)) { rig.upstream.inFlight == 2 })
        running.cancel()
        await running.value
        let outcomes = await rig.outcomes.all
        #expect(outcomes.count == 5)
        #expect(outcomes.allSatisfy { $0.result == .skipped && $0.chatsSkipped == 10 })
        #expect(Set(outcomes.map(\.batchNumber)) == Set(1...5))
        #expect(rig.store.storeCalls.isEmpty)
        #expect(!rig.batcher.submit(rig.batch(6, [chats[0]])))
    }
}

/// Outcomes reported by a batcher, in order.
actor OutcomeLog {
    private(set) var all: [BatchOutcome] = []

    func append(_ outcome: BatchOutcome) {
        all.append(outcome)
    }
}
