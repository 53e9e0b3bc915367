import Testing

@testable import Actors

/// A shared run's books and end rule, without Redis: the model the coordination scripts follow.
@Suite("Shared run books")
struct SharedRunBooksTests {
    typealias Event = SharedRunBooks.Event

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var events: [Event]
        var state: SyncRun.State
        var backlog: Int
        var failure: String? = nil
        var description: String { name }
    }

    @Test(arguments: [
        Case(
            name: "nothing planned, producer done", events: [.producerEnded(.finished)], state: .completed, backlog: 0),
        Case(
            name: "all written",
            events: [.appended(count: 2), .settled(.written), .settled(.deferred), .producerEnded(.finished)],
            state: .completed, backlog: 0),
        Case(
            name: "settled before the producer ends: still running", events: [.appended(count: 1), .settled(.written)],
            state: .running, backlog: 0),
        Case(
            name: "producer done, one batch left in the stream",
            events: [.appended(count: 2), .settled(.written), .producerEnded(.finished)],
            state: .running, backlog: 1),
        Case(
            name: "the last settlement ends it",
            events: [.appended(count: 2), .producerEnded(.finished), .settled(.failed), .settled(.written)],
            state: .completed, backlog: 0),
        Case(
            name: "every batch failed",
            events: [.appended(count: 2), .producerEnded(.finished), .settled(.failed), .settled(.failed)],
            state: .failed, backlog: 0, failure: "every batch failed upstream"),
        Case(
            name: "a skipped batch cancels",
            events: [.appended(count: 2), .producerEnded(.finished), .settled(.skipped), .settled(.written)],
            state: .cancelled, backlog: 0),
        Case(
            name: "listing failed", events: [.appended(count: 1), .producerEnded(.failed), .settled(.written)],
            state: .failed, backlog: 0),
        Case(
            name: "interrupted by a new leader",
            events: [.appended(count: 1), .producerEnded(.interrupted), .settled(.written)],
            state: .cancelled, backlog: 0),
        Case(
            name: "reaped with batches never back",
            events: [.appended(count: 3), .settled(.written), .producerEnded(.finished), .reaped],
            state: .failed, backlog: 2, failure: "2 batches were never accounted for"),
    ])
    func books(_ example: Case) {
        var books = SharedRunBooks()
        var ended: [SyncRun.State] = []
        for event in example.events {
            for case .ended(let state) in books.handle(event) { ended.append(state) }
        }
        #expect(books.state == example.state)
        #expect(books.backlog == example.backlog)
        #expect(books.failure == example.failure)
        // A run ends once, in the state it keeps.
        #expect(ended == (example.state == .running ? [] : [example.state]))
    }

    @Test func anEndedRunIgnoresALateProducerEndOrReap() {
        var books = SharedRunBooks()
        _ = books.handle(.producerEnded(.finished))
        #expect(books.handle(.reaped) == [])
        #expect(books.state == .completed)
    }

    @Test(arguments: [
        (backlog: 7, streamLength: 10, wait: false),
        (backlog: 8, streamLength: 10, wait: true),
        (backlog: 0, streamLength: 50, wait: true),
        (backlog: 0, streamLength: 49, wait: false),
    ])
    func roomToAppend(_ example: (backlog: Int, streamLength: Int, wait: Bool)) {
        #expect(
            SharedRunBooks.mustWaitForRoom(
                backlog: example.backlog, backlogLimit: 8, streamLength: example.streamLength, streamLengthLimit: 50)
                == example.wait)
    }
}
