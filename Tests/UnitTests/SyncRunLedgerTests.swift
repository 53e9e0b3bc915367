import Foundation
import Testing

@testable import Actors

@Suite("SyncRunLedger", .timeLimit(.minutes(1)))
struct SyncRunLedgerTests {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)

    static func ledger(running kinds: [SyncRun.Kind]) -> SyncRunLedger {
        var ledger = SyncRunLedger(historyLimit: 3, errorLimit: 2)
        for kind in kinds {
            ledger.begin(SyncRun(id: RunID(rawValue: "\(kind.rawValue)-1"), kind: kind, trigger: "test", startedAt: now))
        }
        return ledger
    }

    typealias Admission = SyncRunLedger.Admission
    static let table: [([SyncRun.Kind], SyncRun.Kind, Admission)] = [
        ([], .full, .start),
        ([], .manualFull, .start),
        ([], .interval, .start),
        ([], .catchUp, .start),
        ([.full], .manualFull, .join(RunID(rawValue: "full-1"))),
        ([.manualFull], .full, .join(RunID(rawValue: "manual_full-1"))),
        ([.full], .interval, .skip(coveredBy: RunID(rawValue: "full-1"))),
        ([.manualFull], .interval, .skip(coveredBy: RunID(rawValue: "manual_full-1"))),
        ([.full], .catchUp, .start),
        ([.interval], .interval, .skip(coveredBy: RunID(rawValue: "interval-1"))),
        ([.catchUp], .interval, .skip(coveredBy: RunID(rawValue: "catch_up-1"))),
        ([.interval], .catchUp, .join(RunID(rawValue: "interval-1"))),
        ([.catchUp], .catchUp, .join(RunID(rawValue: "catch_up-1"))),
        ([.interval], .full, .start),
        ([.interval], .manualFull, .start),
        ([.full, .catchUp], .interval, .skip(coveredBy: RunID(rawValue: "full-1"))),
    ]

    @Test(arguments: table)
    func admission(_ running: [SyncRun.Kind], _ requested: SyncRun.Kind, _ expected: Admission) {
        #expect(Self.ledger(running: running).admission(for: requested) == expected)
    }

    @Test func outcomesAreBookedAndTheRunSettlesOnlyOnceItsProducerIsDone() throws {
        var ledger = Self.ledger(running: [.full])
        let id = RunID(rawValue: "full-1")
        ledger.update(id) { $0.counts.batchesPlanned = 4 }
        let outcomes: [BatchOutcome] = [
            BatchOutcome(runID: id, batchNumber: 1, result: .written, chatsRefreshed: 9, chatsNotFound: 1),
            BatchOutcome(runID: id, batchNumber: 2, result: .deferred, chatsRefreshed: 10),
            BatchOutcome(runID: id, batchNumber: 3, result: .failed, chatsFailed: 10, errors: ["a", "b", "c"]),
        ]
        for outcome in outcomes { _ = ledger.apply(outcome, at: Self.now) }
        ledger.producerFinished(id)
        #expect(!ledger.isSettled(id))
        let applied = ledger.apply(.skipped(SyncBatch(runID: id, number: 4, chats: SyncDoubles.chats(10))), at: Self.now)
        let run = try #require(applied)
        #expect(ledger.isSettled(id))
        let counts = run.counts
        #expect(counts.chatsRefreshed == 19 && counts.chatsNotFound == 1 && counts.chatsFailed == 10 && counts.chatsSkipped == 10)
        #expect(counts.batchesDone == 2 && counts.batchesDeferred == 1 && counts.batchesFailed == 1 && counts.batchesSkipped == 1)
        #expect(run.errors.map(\.message) == ["b", "c"])
        #expect(run.errorsTotal == 3)
        #expect(ledger.totals.chatsRefreshed == 19)
        #expect(ledger.totals.batchesDeferred == 1)
    }

    @Test func endedRunsMoveToABoundedNewestFirstHistory() {
        var ledger = SyncRunLedger(historyLimit: 3, errorLimit: 2)
        for index in 1...5 {
            let id = RunID(rawValue: "interval-\(index)")
            ledger.begin(SyncRun(id: id, kind: .interval, trigger: "test", startedAt: Self.now))
            ledger.finish(id, state: index == 5 ? .failed : .completed, failure: index == 5 ? "boom" : nil, at: Self.now)
        }
        #expect(ledger.running.isEmpty)
        #expect(ledger.recent.map(\.id.rawValue) == ["interval-5", "interval-4", "interval-3"])
        #expect(ledger.recent.first?.failure == "boom")
        #expect(ledger.run(RunID(rawValue: "interval-1")) == nil)
        #expect(ledger.totals.runsStarted == 5 && ledger.totals.runsCompleted == 4 && ledger.totals.runsFailed == 1)
        #expect(ledger.apply(BatchOutcome(runID: RunID(rawValue: "interval-5"), batchNumber: 1, result: .written), at: Self.now) == nil)
    }

    @Test func runIDsReadWellAndDiffer() {
        var random = SeededRandom(seed: 7)
        let start = ISO8601Timestamp.date(from: "2026-11-25T03:00:00.250Z")!
        let first = RunID(kind: .full, startedAt: start, random: &random)
        let second = RunID(kind: .full, startedAt: start, random: &random)
        #expect(first.rawValue.hasPrefix("full-20261125T030000Z-"))
        #expect(first.rawValue.count == "full-20261125T030000Z-ab12".count)
        #expect(first != second)
        #expect(RunID(kind: .catchUp, startedAt: start, random: &random).rawValue.hasPrefix("catchup-"))
        #expect(RunID(kind: .manualFull, startedAt: start, random: &random).rawValue.hasPrefix("manual-"))
    }

    @Test func runEncodesWithSnakeCaseKeysAndISODatesWhateverTheEncoder() throws {
        var run = SyncRun(
            id: RunID(rawValue: "full-20261125T030000Z-ab12"), kind: .manualFull, trigger: "admin",
            startedAt: ISO8601Timestamp.date(from: "2026-11-25T03:00:00.000Z")!)
        run.counts.chatsPlanned = 100
        run.counts.batchesDeferred = 1
        run.recordError("page 2 failed", at: ISO8601Timestamp.date(from: "2026-11-25T03:00:05.000Z")!, limit: 5)
        run.state = .completed
        run.finishedAt = ISO8601Timestamp.date(from: "2026-11-25T03:01:30.000Z")!
        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(run)) as? [String: Any])
        #expect(json["id"] as? String == "full-20261125T030000Z-ab12")
        #expect(json["kind"] as? String == "manual_full")
        #expect(json["state"] as? String == "completed")
        #expect(json["started_at"] as? String == "2026-11-25T03:00:00.000Z")
        #expect(json["finished_at"] as? String == "2026-11-25T03:01:30.000Z")
        #expect(json["duration_seconds"] as? Double == 90)
        #expect(json["pages_read"] as? Int == 0)
        #expect(json["errors_total"] as? Int == 1)
        #expect(json["joined_requests"] as? Int == 0)
        let counts = try #require(json["counts"] as? [String: Any])
        #expect(counts["chats_planned"] as? Int == 100)
        #expect(counts["batches_deferred"] as? Int == 1)
        let errors = try #require(json["errors"] as? [[String: Any]])
        #expect(errors.first?["at"] as? String == "2026-11-25T03:00:05.000Z")
        #expect(errors.first?["message"] as? String == "page 2 failed")

        let going = SyncRun(id: RunID(rawValue: "interval-x"), kind: .interval, trigger: "schedule", startedAt: Self.now)
        let goingJSON = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(going)) as? [String: Any])
        #expect(goingJSON["finished_at"] is NSNull)
        #expect(goingJSON["pages_read"] is NSNull)
    }
}
