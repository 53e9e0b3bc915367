public import Foundation

/// The wall clock the sync layer plans by: the daily full run happens at an hour of the day and
/// entries carry wall-clock `fetched_at` times, so runs are planned in `Date`s rather than on a
/// monotonic clock. Injected so that tests drive "03:00" and "15 minutes later" without waiting
/// (see ``ManualSyncClock``).
public protocol SyncClock: Sendable {
    /// The current wall-clock time.
    func now() -> Date
    /// Returns once `now() >= deadline`; throws `CancellationError` when the task is cancelled.
    func sleep(until deadline: Date) async throws
}

/// The system's wall clock.
///
/// `sleep(until:)` sleeps in naps of at most ``maximumNap`` and compares with the wall clock after
/// each one, because a monotonic sleep knows nothing of wall-clock jumps: after NTP moves the
/// clock (or a VM resumes) the deadline is still met within one nap instead of hours late or
/// early.
public struct SystemSyncClock: SyncClock {
    /// The longest single sleep between two looks at the wall clock.
    public var maximumNap: Duration

    public init(maximumNap: Duration = .seconds(30)) {
        precondition(maximumNap > .zero, "SystemSyncClock needs a positive nap")
        self.maximumNap = maximumNap
    }

    public func now() -> Date { Date() }

    public func sleep(until deadline: Date) async throws {
        while true {
            try Task.checkCancellation()
            let remaining = deadline.timeIntervalSince(now())
            guard remaining > 0 else { return }
            let nap =
                remaining >= maximumNap.timeInterval
                ? maximumNap : Duration.milliseconds(Int64((remaining * 1000).rounded(.up)))
            try await Task.sleep(for: nap)
        }
    }
}
