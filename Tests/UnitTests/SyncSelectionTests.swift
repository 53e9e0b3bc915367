import Foundation
import Testing

@testable import Actors

@Suite("Sync selection and batching", .timeLimit(.minutes(1)))
struct SyncSelectionTests {
    static let horizon = Date(timeIntervalSince1970: 1_795_000_000)

    @Test func dueChatsAreThoseAtLeastThresholdOldAtTheHorizonOrUnknown() {
        let chats = SyncDoubles.chats(4)
        let fetchedAt: [ChatID: Date] = [
            chats[0]: Self.horizon.addingTimeInterval(-3600), // exactly the threshold: due
            chats[1]: Self.horizon.addingTimeInterval(-3599), // a second short: not due
            chats[2]: Self.horizon.addingTimeInterval(600), // from the future (clock skew): not due
        ]
        let due = StaleSelection.due(chats, fetchedAt: fetchedAt, horizon: Self.horizon, staleThreshold: .seconds(3600))
        #expect(due == [chats[0], chats[3]])
    }

    @Test func jitterStaysWithinItsBoundsAndVaries() {
        var random = SeededRandom(seed: 1)
        let delays = (0..<1000).map { _ in
            IntervalJitter.delay(interval: .seconds(900), jitter: 0.1, random: &random)
        }
        #expect(delays.allSatisfy { $0 >= .seconds(810) && $0 <= .seconds(990) })
        #expect(Set(delays).count > 100)
        #expect(IntervalJitter.longest(interval: .seconds(900), jitter: 0.1) == .seconds(990))
        #expect(IntervalJitter.delay(interval: .seconds(900), jitter: 0, random: &random) == .seconds(900))
    }

    @Test func accumulatorCutsFullBatchesAndKeepsOnePartial() {
        let chats = SyncDoubles.chats(12)
        var accumulator = BatchAccumulator(batchSize: 5)
        #expect(accumulator.add(chats[0..<3]).isEmpty)
        #expect(accumulator.add(chats[3..<9]) == [Array(chats[0..<5])])
        #expect(accumulator.add(chats[9..<12]) == [Array(chats[5..<10])])
        #expect(accumulator.flush() == Array(chats[10..<12]))
        #expect(accumulator.flush() == nil)
    }

    @Test func accumulatorDropsADuplicateWithinABatch() {
        let chats = SyncDoubles.chats(3)
        var accumulator = BatchAccumulator(batchSize: 3)
        #expect(accumulator.add([chats[0], chats[0], chats[1], chats[0], chats[2]]) == [chats])
        #expect(accumulator.flush() == nil)
    }
}
