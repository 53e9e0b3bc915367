import Testing

@testable import Actors

/// The stream reader's holdings and what it does next, without I/O: every event in the states
/// where it matters.
@Suite("Batch consumer state")
struct BatchConsumerStateTests {
    typealias State = BatchConsumerState

    /// Ready, group created, nothing held.
    static func reading(holdLimit: Int = 8) -> State {
        var state = State(holdLimit: holdLimit)
        #expect(state.handle(.redisReady) == [.ensureGroup])
        // The first look is a claim (a restarted instance's own pending batches come back first).
        #expect(state.handle(.groupEnsured) == [.claim(count: holdLimit)])
        #expect(state.handle(.claimCompleted(held: 0, more: false)) == [.read(count: holdLimit)])
        return state
    }

    @Test func nothingIsReadBeforeRedisIsReady() {
        var state = State(holdLimit: 4)
        #expect(state.handle(.claimDue) == [])
        #expect(state.handle(.pollDue) == [])
        #expect(state.phase == .waitingForRedis)
    }

    struct ReadCase: Sendable, CustomStringConvertible {
        var entries: Int
        var held: Int
        var expected: [BatchConsumerState.Action]
        var description: String { "read \(entries), held \(held)" }
    }

    /// A full read reads again at once for what room is left; a short read means the stream is
    /// drained, so a blocking read waits for the next append; a full house waits for outcomes.
    @Test(arguments: [
        ReadCase(entries: 8, held: 8, expected: []),
        ReadCase(entries: 3, held: 3, expected: [.blockingRead(count: 5)]),
        ReadCase(entries: 0, held: 0, expected: [.blockingRead(count: 8)]),
        // Entries that were not batches (acknowledged and dropped) are not held.
        ReadCase(entries: 8, held: 6, expected: [.read(count: 2)]),
    ])
    func afterARead(_ example: ReadCase) {
        var state = Self.reading()
        #expect(
            state.handle(.readCompleted(entries: example.entries, held: example.held, asked: 8)) == example.expected)
        #expect(state.held == example.held)
        #expect(state.held + state.blockingCount <= state.holdLimit)
    }

    @Test func anOutcomeMakesRoomOnlyOnceBooked() {
        var state = Self.reading(holdLimit: 2)
        #expect(state.handle(.readCompleted(entries: 2, held: 2, asked: 2)) == [])
        // Processed: booking starts, the batch is still held until booked.
        #expect(state.handle(.outcome(needsBooking: true)) == [.book(count: 1)])
        #expect(state.held == 2)
        #expect(state.handle(.outcome(needsBooking: true)) == [])
        // Booked: room for one, and the second booking follows (oldest first).
        #expect(state.handle(.booked(count: 1)) == [.book(count: 1), .read(count: 1)])
        #expect(state.held == 1)
    }

    @Test func aSkippedBatchIsNotBookedButFreesItsPlace() {
        var state = Self.reading(holdLimit: 1)
        #expect(state.handle(.readCompleted(entries: 1, held: 1, asked: 1)) == [])
        #expect(state.handle(.outcome(needsBooking: false)) == [.read(count: 1)])
        #expect(state.unbooked == 0)
    }

    @Test func aBlockingReadReservesRoomAndTheNextAppendWakesIt() {
        var state = Self.reading(holdLimit: 4)
        #expect(state.handle(.readCompleted(entries: 0, held: 0, asked: 4)) == [.blockingRead(count: 4)])
        #expect(state.room == 0)
        // Another instance appended three batches: they come back, and the reader reads on.
        #expect(state.handle(.blockingReadCompleted(entries: 3, held: 3)) == [.read(count: 1)])
        // The block time passed with nothing appended: block again.
        #expect(state.handle(.readCompleted(entries: 0, held: 0, asked: 1)) == [.blockingRead(count: 1)])
        #expect(state.handle(.blockingReadCompleted(entries: 0, held: 0)) == [.blockingRead(count: 1)])
    }

    @Test func withoutAConnectionOfItsOwnAnIdleReaderPolls() {
        var state = Self.reading(holdLimit: 4)
        #expect(state.handle(.readCompleted(entries: 0, held: 0, asked: 4)) == [.blockingRead(count: 4)])
        #expect(state.handle(.blockingReadUnavailable) == [.pollLater])
        #expect(state.handle(.pollDue) == [.read(count: 4)])
        // The poll found nothing: it tries its own connection again.
        #expect(state.handle(.readCompleted(entries: 0, held: 0, asked: 4)) == [.blockingRead(count: 4)])
    }

    @Test func oneReadAtATimeOnTheSharedConnection() {
        var state = Self.reading(holdLimit: 4)
        // A read is in flight: a claim tick waits for it.
        #expect(state.handle(.claimDue) == [])
        #expect(state.handle(.readCompleted(entries: 4, held: 4, asked: 4)) == [])
        #expect(state.handle(.outcome(needsBooking: true)) == [.book(count: 1)])
        #expect(state.handle(.booked(count: 1)) == [.claim(count: 1)])
        // The claim scan goes on while its cursor has not wrapped.
        #expect(state.handle(.claimCompleted(held: 0, more: true)) == [.claim(count: 1)])
        #expect(state.handle(.claimCompleted(held: 0, more: false)) == [.read(count: 1)])
    }

    @Test func outcomesAreKeptWhileRedisIsAwayAndBookedWhenItIsBack() {
        var state = Self.reading(holdLimit: 2)
        #expect(state.handle(.readCompleted(entries: 2, held: 2, asked: 2)) == [])
        #expect(state.handle(.redisLost) == [])
        #expect(state.handle(.outcome(needsBooking: true)) == [])
        #expect(state.handle(.outcome(needsBooking: true)) == [])
        #expect(state.unbooked == 2)
        // Kept outcomes are booked together, in one pipeline.
        #expect(state.handle(.redisReady) == [.book(count: 2), .ensureGroup])
        #expect(state.handle(.bookingFailed) == [])
        // Blocked until the next claim tick (or ready): no hot retry loop.
        #expect(state.handle(.groupEnsured) == [])
        #expect(state.handle(.claimDue) == [.book(count: 2)])
        #expect(state.handle(.booked(count: 2)) == [.claim(count: 2)])
    }

    @Test func theHoldLimitFollowsTheBatcher() {
        var state = Self.reading(holdLimit: 2)
        #expect(state.handle(.readCompleted(entries: 2, held: 2, asked: 2)) == [])
        #expect(state.handle(.holdLimitChanged(6)) == [.read(count: 4)])
        #expect(state.handle(.readCompleted(entries: 4, held: 4, asked: 4)) == [])
        // Lowered below what is held: nothing more is read until enough is settled.
        #expect(state.handle(.holdLimitChanged(3)) == [])
        #expect(state.room == 0)
    }

    @Test func shutdownStopsReadingAndFinishesOnceEverythingIsSettled() {
        var state = Self.reading(holdLimit: 2)
        #expect(state.handle(.readCompleted(entries: 1, held: 1, asked: 2)) == [.blockingRead(count: 1)])
        #expect(state.handle(.shutdown) == [.cancelBlockingRead])
        #expect(state.handle(.blockingReadUnavailable) == [])
        #expect(state.handle(.claimDue) == [])
        #expect(state.handle(.outcome(needsBooking: true)) == [.book(count: 1)])
        #expect(state.handle(.booked(count: 1)) == [.finish])
        #expect(state.phase == .finished)
    }

    @Test func shutdownGivesUpWhatIsLeftWhenTheGracePeriodEnds() {
        var state = Self.reading(holdLimit: 2)
        #expect(state.handle(.readCompleted(entries: 2, held: 2, asked: 2)) == [])
        #expect(state.handle(.shutdown) == [])
        #expect(state.handle(.graceExpired) == [.finish])
        #expect(state.handle(.outcome(needsBooking: true)) == [])
    }

    @Test func aLostGroupIsCreatedAgain() {
        var state = Self.reading(holdLimit: 2)
        #expect(state.handle(.noGroup) == [.ensureGroup])
        // A failure waits for the next tick: no hot retry loop against a refusing Redis.
        #expect(state.handle(.groupFailed) == [])
        #expect(state.handle(.claimDue) == [.ensureGroup])
        #expect(state.handle(.groupEnsured) == [.claim(count: 2)])
    }

    @Test func aFailedReadWaitsForTheNextTick() {
        var state = Self.reading(holdLimit: 2)
        #expect(state.handle(.readFailed) == [])
        #expect(state.handle(.pollDue) == [.read(count: 2)])
    }
}
