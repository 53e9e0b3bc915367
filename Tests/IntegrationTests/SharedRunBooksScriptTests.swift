import Foundation
import TestSupport
import Testing

@testable import Actors
@testable import ChatRuntime

/// The coordination scripts keep a run's books as ``SharedRunBooks`` says: the same events
/// (appends, settlements in any order and with any results, the producer's end) driven through
/// the real scripts on a real redis-server and through the pure model end in the same state
/// with the same counts.
@Suite("Shared run books: scripts agree with the model", .serialized, .timeLimit(.minutes(2)))
struct SharedRunBooksScriptTests {
    struct Plan: Sendable, CustomStringConvertible {
        var batches: Int
        var results: [BatchOutcome.Result]
        var producerEnd: SharedRunBooks.ProducerEnd
        /// Settlements booked before the producer ends.
        var settledBeforeEnd: Int
        var description: String { "\(batches) batches, \(results), \(producerEnd), \(settledBeforeEnd) before the end" }
    }

    static let plans: [Plan] = {
        var random = SeededRandom(seed: 7)
        // Not `.skipped`: a batch not processed is never settled, it stays pending for a claim.
        let results: [BatchOutcome.Result] = [.written, .deferred, .failed]
        var plans: [Plan] = [
            Plan(batches: 0, results: [], producerEnd: .finished, settledBeforeEnd: 0),
            Plan(batches: 2, results: [.failed, .failed], producerEnd: .finished, settledBeforeEnd: 1),
            Plan(batches: 1, results: [.written], producerEnd: .failed, settledBeforeEnd: 1),
        ]
        for _ in 0..<9 {
            let count = Int.random(in: 1...6, using: &random)
            let ends: [SharedRunBooks.ProducerEnd] = [.finished, .finished, .failed, .interrupted]
            plans.append(
                Plan(
                    batches: count,
                    results: (0..<count).map { _ in results[Int.random(in: 0..<results.count, using: &random)] },
                    producerEnd: ends[Int.random(in: 0..<ends.count, using: &random)],
                    settledBeforeEnd: Int.random(in: 0...count, using: &random)))
        }
        return plans
    }()

    @Test(arguments: plans)
    func scriptsKeepTheBooksTheModelKeeps(_ plan: Plan) async throws {
        let rig = try await SharedRunsTests.Rig()
        let run = RunID(rawValue: "manual-books")
        _ = try await rig.runs.create(
            run, kind: .manualFull, trigger: "test", at: SharedRunsTests.t0, lease: nil, tick: nil)
        let lease = try await rig.lease("me:1", fence: 1)
        _ = try await rig.runs.adopt(run, slot: .full, lease: lease, at: SharedRunsTests.t0)
        var model = SharedRunBooks()

        let chats = (0..<plan.batches).map { [ChatID(validating: "c-\($0)")!] }
        if !chats.isEmpty {
            _ = try await rig.runs.append(
                run, kind: .manualFull, lease: lease, batches: chats, progress: .init(), final: false,
                at: SharedRunsTests.t0)
            _ = model.handle(.appended(count: chats.count))
        }
        let stream = rig.stream(as: "me")
        let batches = try await stream.read(count: 100).entries.compactMap {
            BatchStream.batch(from: $0, claimed: false)
        }
        #expect(batches.count == plan.batches)

        func settle(_ index: Int) async throws {
            var outcome = BatchOutcome(runID: run, batchNumber: batches[index].number, result: plan.results[index])
            outcome.delivery = batches[index].delivery
            _ = try await rig.runs.settle(outcome, delivery: outcome.delivery!, at: SharedRunsTests.t0)
            _ = model.handle(.settled(plan.results[index]))
        }
        for index in 0..<plan.settledBeforeEnd { try await settle(index) }
        let state = try await rig.runs.finishProducer(
            run, kind: .manualFull, lease: lease, end: plan.producerEnd,
            failure: plan.producerEnd == .failed ? "listing failed" : nil,
            at: SharedRunsTests.t0)
        _ = model.handle(.producerEnded(plan.producerEnd))
        #expect(state == model.state)
        for index in plan.settledBeforeEnd..<plan.batches { try await settle(index) }

        let recorded = try #require(try await rig.runs.run(run))
        #expect(recorded.state == model.state)
        #expect(recorded.counts.batchesPlanned == model.planned)
        #expect(recorded.counts.batchesDone == model.done)
        #expect(recorded.counts.batchesFailed == model.failed)
        #expect(recorded.counts.batchesSkipped == model.skipped)
        #expect(try await rig.runs.backlog(of: run) == model.backlog)
        await rig.close()
    }
}
