import ChatRuntime
public import Foundation

/// A test clock: time stands still until a test moves it with ``advance(by:)`` or ``set(_:)``.
///
/// Moving the clock resumes, in deadline order, every sleeper whose deadline has been reached;
/// nothing else wakes them, so a test decides exactly when "03:00" or "15 minutes later" happens
/// and never waits for real time to pass. Sleeps are cancellable. Thread-safe; public so that
/// unit tests, integration tests and the service's own tests can all drive the scheduler with it.
public final class ManualSyncClock: SyncClock {
    private struct Sleeper {
        let id: UInt64
        let deadline: Date
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Date
        var nextSleeperID: UInt64 = 0
        var sleepers: [Sleeper] = []
    }

    private let state: AnnotatedMutex<State>

    /// A clock that reads `now` until moved.
    public init(now: Date) {
        state = AnnotatedMutex(State(now: now))
    }

    public func now() -> Date {
        state.withLock { $0.now }
    }

    public func sleep(until deadline: Date) async throws {
        let id = state.withLock { state in
            state.nextSleeperID += 1
            return state.nextSleeperID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Checked under the lock so that a cancellation racing with the registration
                // either sees the sleeper or is seen here.
                let immediate: Result<Void, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let cancelled = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            cancelled?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock forward by `duration` (not negative) and wakes the sleepers now due.
    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "ManualSyncClock only advances forward; use set(_:) to jump back")
        let due = state.withLock { state in
            state.now = state.now.addingTimeInterval(duration.timeInterval)
            return Self.takeDue(from: &state)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Sets the clock to `date`, forward or back (a wall-clock jump), and wakes the sleepers now due.
    public func set(_ date: Date) {
        let due = state.withLock { state in
            state.now = date
            return Self.takeDue(from: &state)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// How many tasks are sleeping on this clock.
    public var sleeperCount: Int {
        state.withLock { $0.sleepers.count }
    }

    /// The deadlines of the sleeping tasks, earliest first.
    public var sleeperDeadlines: [Date] {
        state.withLock { $0.sleepers.map(\.deadline).sorted() }
    }

    /// Waits (in real time, at most `timeout`) until at least `count` tasks sleep on this clock;
    /// returns whether they do. Tests use it to move the clock only once the code under test has
    /// gone to sleep.
    public func waitForSleepers(atLeast count: Int, timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while sleeperCount < count {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return true
    }

    private static func takeDue(from state: inout State) -> [Sleeper] {
        let now = state.now
        let due = state.sleepers.filter { $0.deadline <= now }
        state.sleepers.removeAll { $0.deadline <= now }
        return due.sorted { ($0.deadline, $0.id) < ($1.deadline, $1.id) }
    }
}
