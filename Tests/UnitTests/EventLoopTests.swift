import Foundation
import Testing
import TestSupport

@testable import ChatRuntime

@Suite("EventLoop")
struct EventLoopTests {
    actor Counter {
        nonisolated let unownedExecutor: UnownedSerialExecutor
        let loop: EventLoop
        var value = 0
        init(loop: EventLoop) {
            self.loop = loop
            unownedExecutor = loop.asUnownedSerialExecutor()
        }
        func increment() -> Int {
            loop.preconditionInLoop()
            value += 1
            return value
        }
    }

    @Test func actorsRunOnTheLoopThread() async {
        let loop = EventLoop(name: "test-loop")
        let counter = Counter(loop: loop)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<1000 {
                group.addTask { _ = await counter.increment() }
            }
        }
        #expect(await counter.value == 1000)
        #expect(!loop.inLoop)
        loop.stop()
    }

    @Test func oneShotAndRepeatingTimersFire() async throws {
        let loop = EventLoop(name: "timer-loop")
        let fired = try await withThrowingTaskGroup(of: Int.self) { _ in
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
                let box = UncheckedBox(continuation)
                Task(executorPreference: loop) {
                    var count = 0
                    var repeatingTimer: LoopTimer?
                    repeatingTimer = LoopTimer(loop: loop) {
                        count += 1
                        if count == 3 {
                            repeatingTimer?.cancel()
                            let oneShot = LoopTimer(loop: loop) { box.value.resume(returning: count) }
                            oneShot.schedule(after: .milliseconds(5))
                        }
                    }
                    repeatingTimer?.schedule(after: .milliseconds(2), repeating: true)
                }
            }
        }
        #expect(fired == 3)
        loop.stop()
    }

    @Test func jobsEnqueuedAfterStopStillRun() async throws {
        let loop = EventLoop(name: "stopped-loop")
        loop.stop()
        try #require(await eventually(timeout: .seconds(5)) { loop.hasEndedDispatch })
        let counter = Counter(loop: loop)
        #expect(await counter.increment() == 1)
    }

    @Test func anyLoopThreadIsKnownAsOne() async {
        let first = EventLoop(name: "first-loop")
        let second = EventLoop(name: "second-loop")
        #expect(await first.run { EventLoop.onAnyLoopThread })
        #expect(await second.run { EventLoop.onAnyLoopThread })
        let elsewhere = await Task.detached { EventLoop.onAnyLoopThread }.value
        #expect(!elsewhere)
        #expect(!(await Thread.runDetached { EventLoop.onAnyLoopThread }))
        first.stop()
        second.stop()
    }

    @Test func theSerialExecutorIsOneObjectWhicheverThreadAsksFirst() async {
        // A fresh loop asked for its executor by many threads at once: a lazily created
        // executor could be created twice (and the loser's actors would check a different one).
        let loop = EventLoop(name: "executor-loop")
        let identities = await withTaskGroup(of: ObjectIdentifier.self) { group in
            for _ in 0..<16 {
                group.addTask { await Thread.runDetached { ObjectIdentifier(loop.serialExecutor) } }
            }
            return await group.reduce(into: Set<ObjectIdentifier>()) { $0.insert($1) }
        }
        #expect(identities.count == 1)
        loop.stop()
    }

    @Test func runExecutesOnTheLoop() async {
        let loop = EventLoop(name: "run-loop")
        let onLoop = await loop.run { [loop] in loop.inLoop }
        #expect(onLoop)
        loop.stop()
    }
}

/// Test-only: carries a continuation into a loop-confined closure.
struct UncheckedBox<T>: @unchecked Sendable {
    // @unchecked Sendable: used once, from the single loop thread, in tests only.
    let value: T
    init(_ value: T) { self.value = value }
}

extension Thread {
    /// Runs `body` on a new thread of its own (never a loop's, never the cooperative pool's).
    static func runDetached<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.start()
        }
    }
}
