import Foundation

/// When the daily full refresh happens: at `hour`:00 local time in `timeZone`.
///
/// Days on which the hour is irregular, by choice:
/// - the hour does not exist (clocks spring forward over it): the run happens at the first
///   instant after the gap, i.e. the moment the skipped hour would have begun (02:00 skipped by a
///   02:00→03:00 change runs at 03:00 local), so no day goes without its run;
/// - the hour happens twice (clocks fall back): the run happens once, at the first occurrence.
public struct DailySchedule: Sendable, Hashable {
    /// The local hour, 0...23.
    public let hour: Int
    public let timeZone: TimeZone

    /// - Precondition: `0...23` contains `hour`.
    public init(hour: Int, timeZone: TimeZone) {
        precondition((0...23).contains(hour), "the full-run hour must be within 0...23")
        self.hour = hour
        self.timeZone = timeZone
    }

    /// The first run instant strictly after `now`.
    public func nextRun(after now: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let target = DateComponents(hour: hour, minute: 0, second: 0, nanosecond: 0)
        if let next = calendar.nextDate(
            after: now, matching: target, matchingPolicy: .nextTime, repeatedTimePolicy: .first, direction: .forward)
        {
            return next
        }
        // Foundation finds a match for every real time zone; should it not, a day later keeps the
        // schedule going rather than stopping it.
        return now.addingTimeInterval(86_400)
    }
}
