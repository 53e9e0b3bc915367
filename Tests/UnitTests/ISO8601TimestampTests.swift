import Foundation
import Testing

@testable import Actors

@Suite("ISO8601Timestamp")
struct ISO8601TimestampTests {
    private static func utcFormatter() -> ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter
    }

    @Test(arguments: [
        ("1970-01-01T00:00:00.000Z", 0.0),
        ("2026-11-25T03:00:00.123Z", 1_795_575_600.123),
        ("1969-12-31T23:59:59.999Z", -0.001),
        ("2000-02-29T12:34:56.789Z", 951_827_696.789),
        ("0001-01-01T00:00:00.000Z", -62_135_596_800.0),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799.999),
    ])
    func formatsKnownInstants(_ expected: String, _ secondsSince1970: Double) {
        let date = Date(timeIntervalSince1970: secondsSince1970)
        #expect(ISO8601Timestamp.string(from: date) == expected)
        let parsed = ISO8601Timestamp.date(from: expected)
        #expect(parsed.map { abs($0.timeIntervalSince1970 - secondsSince1970) < 0.0005 } == true)
    }

    @Test func agreesWithFoundationOnRandomInstants() {
        var random = SeededRandom(seed: 42)
        let formatter = Self.utcFormatter()
        for _ in 0..<2000 {
            let milliseconds = Int64.random(in: -2_000_000_000_000...4_000_000_000_000, using: &random)
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            let ours = ISO8601Timestamp.string(from: date)
            #expect(ours == formatter.string(from: date), "\(milliseconds)")
            let parsed = ISO8601Timestamp.date(from: ours)
            #expect(parsed == date, "\(ours)")
        }
    }

    @Test func roundsToTheNearestMillisecond() {
        let date = Date(timeIntervalSince1970: 10.0006)
        #expect(ISO8601Timestamp.string(from: date) == "1970-01-01T00:00:10.001Z")
    }

    @Test func clampsDatesOutsideFourDigitYears() {
        #expect(ISO8601Timestamp.string(from: .distantFuture) == "4001-01-01T00:00:00.000Z")
        #expect(ISO8601Timestamp.string(from: Date(timeIntervalSince1970: 1e15)) == "9999-12-31T23:59:59.999Z")
        #expect(ISO8601Timestamp.string(from: Date(timeIntervalSince1970: -1e15)) == "0001-01-01T00:00:00.000Z")
        #expect(ISO8601Timestamp.string(from: Date(timeIntervalSince1970: .infinity)) == "9999-12-31T23:59:59.999Z")
        #expect(ISO8601Timestamp.string(from: Date(timeIntervalSince1970: -.infinity)) == "0001-01-01T00:00:00.000Z")
    }

    @Test(
        arguments: [
            ("2026-11-25T03:00:00Z", 1_795_575_600_000),
            ("2026-11-25T03:00:00.1Z", 1_795_575_600_100),
            ("2026-11-25T03:00:00.12Z", 1_795_575_600_120),
            ("2026-11-25T03:00:00.123456789Z", 1_795_575_600_123),
            ("2026-11-25t03:00:00.123z", 1_795_575_600_123),
            ("2026-11-25T04:00:00.123+01:00", 1_795_575_600_123),
            ("2026-11-24T22:30:00.123-04:30", 1_795_575_600_123),
        ] as [(String, Int64)])
    func parsesVariants(_ text: String, _ milliseconds: Int64) {
        #expect(ISO8601Timestamp.date(from: text) == Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    @Test(arguments: [
        "", "2026", "2026-11-25", "2026-11-25T03:00:00", "2026-11-25 03:00:00Z", "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-25T24:00:00Z",
        "2026-11-25T03:60:00Z", "2026-11-25T03:00:60Z", "2026-11-25T03:00:00.Z",
        "2026-11-25T03:00:00.1234567890Z", "2026-11-25T03:00:00ZZ", "2026-11-25T03:00:00+0100",
        "2026-11-25T03:00:00+24:00", "0000-01-01T00:00:00Z", "+2026-11-25T03:00:00Z", "2026-1-25T03:00:00Z",
        " 2026-11-25T03:00:00Z", "2026-11-25T03:00:00Z ", "２０２６-11-25T03:00:00Z", "1795575600",
    ])
    func rejectsMalformedTimestamps(_ text: String) {
        #expect(ISO8601Timestamp.date(from: text) == nil)
    }

    @Test func leapYearsFollowTheGregorianRules() {
        #expect(ISO8601Timestamp.date(from: "2000-02-29T00:00:00Z") != nil)
        #expect(ISO8601Timestamp.date(from: "2024-02-29T00:00:00Z") != nil)
        #expect(ISO8601Timestamp.date(from: "1900-02-29T00:00:00Z") == nil)
        #expect(ISO8601Timestamp.date(from: "2100-02-29T00:00:00Z") == nil)
    }
}
