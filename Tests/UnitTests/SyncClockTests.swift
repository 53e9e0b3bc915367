import ChatRuntime
import Foundation
import Testing

@testable import Actors

@Suite("Sync clocks", .timeLimit(.minutes(1)))
struct SyncClockTests {
    static let start = Date(timeIntervalSince1970: 1_795_000_000)

    @Test func manualClockWakesOnlyDueSleepersInDeadlineOrder() async throws {
        let clock = ManualSyncClock(now: Self.start)
        let woke = WakeLog()
        let tasks = [30, 10, 20].map { seconds in
            Task {
                try await clock.sleep(until: Self.start.addingTimeInterval(Double(seconds)))
                woke.append(seconds)
            }
        }
        #expect(await clock.waitForSleepers(atLeast: 3))
        clock.advance(by: .seconds(5))
        #expect(clock.sleeperCount == 3)
        clock.advance(by: .seconds(15)) // t = 20: the 10 s and 20 s sleepers are due
        try await tasks[1].value
        try await tasks[2].value
        #expect(Set(woke.values) == [10, 20])
        #expect(clock.sleeperDeadlines == [Self.start.addingTimeInterval(30)])
        clock.set(Self.start.addingTimeInterval(30))
        try await tasks[0].value
        #expect(woke.values.count == 3)
        #expect(clock.now() == Self.start.addingTimeInterval(30))
    }

    @Test func manualClockReturnsAtOnceForAPastDeadline() async throws {
        let clock = ManualSyncClock(now: Self.start)
        try await clock.sleep(until: Self.start)
        try await clock.sleep(until: Self.start.addingTimeInterval(-60))
        #expect(clock.sleeperCount == 0)
    }

    @Test func manualClockSetBackDoesNotWakeSleepers() async throws {
        let clock = ManualSyncClock(now: Self.start)
        let task = Task { try await clock.sleep(until: Self.start.addingTimeInterval(10)) }
        #expect(await clock.waitForSleepers(atLeast: 1))
        clock.set(Self.start.addingTimeInterval(-3600))
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .seconds(3610))
        try await task.value
    }

    @Test func manualClockSleepIsCancellable() async {
        let clock = ManualSyncClock(now: Self.start)
        let task = Task { try await clock.sleep(until: Self.start.addingTimeInterval(3600)) }
        #expect(await clock.waitForSleepers(atLeast: 1))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(clock.sleeperCount == 0)
    }

    @Test func manualClockSleepInACancelledTaskThrows() async {
        let clock = ManualSyncClock(now: Self.start)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await clock.sleep(until: Self.start.addingTimeInterval(1))
        }
        await #expect(throws: CancellationError.self) { try await task.value }
    }

    @Test func systemClockSleepsUntilThePastDeadlineAndNaps() async throws {
        let clock = SystemSyncClock(maximumNap: .milliseconds(5))
        try await clock.sleep(until: clock.now().addingTimeInterval(-1))
        let deadline = clock.now().addingTimeInterval(0.03)
        try await clock.sleep(until: deadline)
        #expect(clock.now() >= deadline)
    }

    @Test func systemClockSleepIsCancellable() async {
        let clock = SystemSyncClock(maximumNap: .milliseconds(5))
        let task = Task { try await clock.sleep(until: clock.now().addingTimeInterval(3600)) }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}

/// Values appended from several tasks.
final class WakeLog: Sendable {
    private let storage = AnnotatedMutex<[Int]>([])
    func append(_ value: Int) { storage.withLock { $0.append(value) } }
    var values: [Int] { storage.withLock { $0 } }
}
