public import Foundation

/// When the daily full refresh happens: at `hour`:00 local time in `timeZone`.
///
/// Days on which the hour is irregular, by choice:
/// - the hour does not exist (clocks spring forward over it): the run happens at the first
///   instant after the gap, i.e. the moment the skipped hour would have begun (02:00 skipped by a
///   02:00→03:00 change runs at 03:00 local), so no day goes without its run;
/// - the hour happens twice (clocks fall back): the run happens once, at the first occurrence.
///
/// In one rule: the run is at the first instant whose local wall-clock reading is at least
/// `hour`:00. Computed from `TimeZone` offsets alone, because Foundation's
/// `Calendar.nextDate(after:matching:...)` on Linux gets both kinds of days wrong.
public struct DailySchedule: Sendable, Hashable {
    /// The local hour, 0...23.
    public let hour: Int
    public let timeZone: TimeZone

    private static let day: Double = 86_400

    /// - Precondition: `0...23` contains `hour`.
    public init(hour: Int, timeZone: TimeZone) {
        precondition((0...23).contains(hour), "the full-run hour must be within 0...23")
        self.hour = hour
        self.timeZone = timeZone
    }

    /// The first run instant strictly after `now`.
    public func nextRun(after now: Date) -> Date {
        // Local wall-clock times are handled as seconds since the epoch "as if local were UTC".
        let localMidnight = (wallTime(at: now.timeIntervalSince1970) / Self.day).rounded(.down) * Self.day
        for day in -1...3 {
            let run = firstInstant(atOrAfterWall: localMidnight + Double(day) * Self.day + Double(hour) * 3_600)
            if run > now { return run }
        }
        // Some day among five always qualifies; should none, a day later keeps the schedule going.
        return now.addingTimeInterval(Self.day)
    }

    /// The first instant whose local wall-clock reading is at least `wall`.
    private func firstInstant(atOrAfterWall wall: Double) -> Date {
        // At most one offset change is assumed within a day of `wall`.
        let offsetBefore = offset(at: wall - Self.day)
        let offsetAfter = offset(at: wall + Self.day)
        let exact = [wall - offsetBefore, wall - offsetAfter].filter { wallTime(at: $0) == wall }
        if let first = exact.min() {
            return Date(timeIntervalSince1970: first)
        }
        // `wall` falls in a gap: find the end of the gap, to the second.
        var low = min(wall - offsetBefore, wall - offsetAfter)
        var high = max(wall - offsetBefore, wall - offsetAfter)
        guard wallTime(at: low) < wall, wallTime(at: high) >= wall else {
            return Date(timeIntervalSince1970: high)
        }
        while high - low > 1 {
            let middle = ((low + high) / 2).rounded(.down)
            if wallTime(at: middle) >= wall { high = middle } else { low = middle }
        }
        return Date(timeIntervalSince1970: high)
    }

    private func offset(at instant: Double) -> Double {
        Double(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: instant)))
    }

    private func wallTime(at instant: Double) -> Double {
        instant + offset(at: instant)
    }
}
