import Foundation
import Testing

@testable import Actors

@Suite("DailySchedule", .timeLimit(.minutes(1)))
struct DailyScheduleTests {
    static func utc(_ text: String) -> Date {
        ISO8601Timestamp.date(from: text)!
    }

    static func schedule(_ hour: Int, _ zone: String) -> DailySchedule {
        DailySchedule(hour: hour, timeZone: TimeZone(identifier: zone)!)
    }

    /// (hour, zone, now, expected next run), all instants in UTC.
    static let cases: [(Int, String, String, String)] = [
        // UTC: strictly after now.
        (3, "UTC", "2026-11-25T02:59:59.000Z", "2026-11-25T03:00:00.000Z"),
        (3, "UTC", "2026-11-25T02:59:59.999Z", "2026-11-25T03:00:00.000Z"),
        (3, "UTC", "2026-11-25T03:00:00.000Z", "2026-11-26T03:00:00.000Z"),
        (3, "UTC", "2026-11-25T03:00:00.001Z", "2026-11-26T03:00:00.000Z"),
        (0, "UTC", "2026-12-31T23:59:59.000Z", "2027-01-01T00:00:00.000Z"),
        (23, "UTC", "2028-02-28T23:30:00.000Z", "2028-02-29T23:00:00.000Z"),
        // Offsets, whole and half hours.
        (3, "Europe/Berlin", "2026-11-25T01:00:00.000Z", "2026-11-25T02:00:00.000Z"),
        (3, "Europe/Berlin", "2026-07-01T00:00:00.000Z", "2026-07-01T01:00:00.000Z"),
        (3, "Asia/Kolkata", "2026-11-25T00:00:00.000Z", "2026-11-25T21:30:00.000Z"),
        (3, "America/Los_Angeles", "2026-11-25T12:00:00.000Z", "2026-11-26T11:00:00.000Z"),
        // Spring forward, Berlin 2026-03-29 02:00 CET -> 03:00 CEST: 02:00 does not exist, the run
        // is at the end of the gap, 03:00 CEST.
        (2, "Europe/Berlin", "2026-03-28T23:00:00.000Z", "2026-03-29T01:00:00.000Z"),
        (3, "Europe/Berlin", "2026-03-28T23:00:00.000Z", "2026-03-29T01:00:00.000Z"),
        (2, "Europe/Berlin", "2026-03-29T01:00:00.000Z", "2026-03-30T00:00:00.000Z"),
        (1, "Europe/Berlin", "2026-03-28T23:00:00.000Z", "2026-03-29T00:00:00.000Z"),
        // Fall back, Berlin 2026-10-25 03:00 CEST -> 02:00 CET: 02:00 happens twice, the run is at
        // the first, and not again at the second.
        (2, "Europe/Berlin", "2026-10-24T22:00:00.000Z", "2026-10-25T00:00:00.000Z"),
        (2, "Europe/Berlin", "2026-10-25T00:00:00.000Z", "2026-10-26T01:00:00.000Z"),
        (2, "Europe/Berlin", "2026-10-25T00:30:00.000Z", "2026-10-26T01:00:00.000Z"),
        (3, "Europe/Berlin", "2026-10-25T00:30:00.000Z", "2026-10-25T02:00:00.000Z"),
        // New York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
        (2, "America/New_York", "2026-03-08T05:00:00.000Z", "2026-03-08T07:00:00.000Z"),
        (1, "America/New_York", "2026-11-01T04:00:00.000Z", "2026-11-01T05:00:00.000Z"),
        (1, "America/New_York", "2026-11-01T05:00:00.000Z", "2026-11-02T06:00:00.000Z"),
        (1, "America/New_York", "2026-11-01T06:30:00.000Z", "2026-11-02T06:00:00.000Z"),
        // Midnight skipped: Sao Paulo 2018-11-04 00:00 -> 01:00 (-03 -> -02).
        (0, "America/Sao_Paulo", "2018-11-03T12:00:00.000Z", "2018-11-04T03:00:00.000Z"),
        // Half-hour DST: Lord Howe 2026-10-04 02:00 -> 02:30 (+10:30 -> +11).
        (2, "Australia/Lord_Howe", "2026-10-03T12:00:00.000Z", "2026-10-03T15:30:00.000Z"),
    ]

    @Test(arguments: cases)
    func nextRun(_ hour: Int, _ zone: String, _ now: String, _ expected: String) {
        let next = Self.schedule(hour, zone).nextRun(after: Self.utc(now))
        #expect(ISO8601Timestamp.string(from: next) == expected)
    }

    @Test(arguments: [
        "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham",
    ])
    func everyDayOfAYearHasExactlyOneRun(_ zone: String) {
        let schedule = Self.schedule(3, zone)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = schedule.timeZone
        var now = Self.utc("2026-01-01T12:00:00.000Z")
        var localDays: Set<DateComponents> = []
        for _ in 0..<400 {
            let next = schedule.nextRun(after: now)
            #expect(next > now)
            #expect(next.timeIntervalSince(now) <= 26 * 3600)
            #expect(calendar.component(.hour, from: next) == 3)
            #expect(localDays.insert(calendar.dateComponents([.year, .month, .day], from: next)).inserted)
            now = next
        }
    }
}
