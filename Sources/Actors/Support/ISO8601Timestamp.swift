public import ChatRuntime
public import Foundation

/// ISO-8601 timestamps with millisecond precision in UTC, e.g. `2026-11-25T03:00:00.123Z`, the form
/// used for `fetched_at` in Redis and in HTTP bodies.
///
/// Written by hand because it sits on the hot path: `ISO8601DateFormatter` is slow and not
/// `Sendable`, and `Date.ISO8601FormatStyle` allocates. Only years 0001...9999 are representable;
/// dates outside are clamped when formatting.
public enum ISO8601Timestamp {
    /// The length of every timestamp this type writes.
    public static let length = 24

    /// Appends the timestamp of `date` (rounded to the nearest millisecond) to `bytes`.
    public static func append(_ date: Date, to bytes: inout [UInt8]) {
        write(date, to: &bytes)
    }

    /// Writes the timestamp of `date` (rounded to the nearest millisecond), always ``length``
    /// bytes, to `sink`.
    public static func write<Sink: ByteSink & ~Copyable>(_ date: Date, to sink: inout Sink) {
        let millisecondsSinceEpoch = clampedMilliseconds(date)
        let (days, millisecondOfDay) = floorDivision(millisecondsSinceEpoch, millisecondsPerDay)
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        appendDigits(year, count: 4, to: &sink)
        sink.append(UInt8(ascii: "-"))
        appendDigits(month, count: 2, to: &sink)
        sink.append(UInt8(ascii: "-"))
        appendDigits(day, count: 2, to: &sink)
        sink.append(UInt8(ascii: "T"))
        appendDigits(millisecondOfDay / 3_600_000, count: 2, to: &sink)
        sink.append(UInt8(ascii: ":"))
        appendDigits(millisecondOfDay / 60_000 % 60, count: 2, to: &sink)
        sink.append(UInt8(ascii: ":"))
        appendDigits(millisecondOfDay / 1000 % 60, count: 2, to: &sink)
        sink.append(UInt8(ascii: "."))
        appendDigits(millisecondOfDay % 1000, count: 3, to: &sink)
        sink.append(UInt8(ascii: "Z"))
    }

    /// The timestamp of `date` as a string.
    public static func string(from date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    ///
    /// The fraction may have 1...9 digits; anything finer than a millisecond is truncated, so a
    /// parsed date always formats back to the same instant. Returns `nil` for anything else,
    /// including out-of-range fields (month 13, February 30, hour 24, second 60).
    public static func date(from text: String) -> Date? {
        var text = text
        return text.withUTF8 { date(fromUTF8: $0) }
    }

    /// Parses the UTF-8 bytes of a timestamp; see ``date(from:)``.
    public static func date<Bytes: RandomAccessCollection<UInt8>>(fromUTF8 utf8: Bytes) -> Date? {
        var reader = DigitReader(bytes: utf8)
        guard let year = reader.number(digits: 4), reader.skip("-"),
            let month = reader.number(digits: 2), reader.skip("-"),
            let day = reader.number(digits: 2), reader.skip("T") || reader.skip("t"),
            let hour = reader.number(digits: 2), reader.skip(":"),
            let minute = reader.number(digits: 2), reader.skip(":"),
            let second = reader.number(digits: 2)
        else { return nil }
        guard year >= 1, (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
            hour < 24, minute < 60, second < 60
        else { return nil }

        var millisecond: Int64 = 0
        if reader.skip(".") {
            var digits = 0
            while let digit = reader.digit() {
                if digits < 3 {
                    millisecond = millisecond * 10 + digit
                }
                digits += 1
            }
            guard (1...9).contains(digits) else { return nil }
            for _ in digits..<max(digits, 3) {
                millisecond *= 10
            }
        }

        var offsetMinutes: Int64 = 0
        if !(reader.skip("Z") || reader.skip("z")) {
            let sign: Int64
            if reader.skip("+") {
                sign = 1
            } else if reader.skip("-") {
                sign = -1
            } else {
                return nil
            }
            guard let offsetHours = reader.number(digits: 2), reader.skip(":"),
                let offsetMinute = reader.number(digits: 2), offsetHours < 24, offsetMinute < 60
            else { return nil }
            offsetMinutes = sign * (offsetHours * 60 + offsetMinute)
        }
        guard reader.isAtEnd else { return nil }

        let days = daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60
        return Date(timeIntervalSince1970: Double(seconds * 1000 + millisecond) / 1000)
    }

    private static let millisecondsPerDay: Int64 = 86_400_000
    /// 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
    private static let earliestMilliseconds: Int64 = -62_135_596_800_000
    private static let latestMilliseconds: Int64 = 253_402_300_799_999

    private static func clampedMilliseconds(_ date: Date) -> Int64 {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded()
        guard milliseconds.isFinite else {
            return milliseconds < 0 ? earliestMilliseconds : latestMilliseconds
        }
        if milliseconds <= Double(earliestMilliseconds) { return earliestMilliseconds }
        if milliseconds >= Double(latestMilliseconds) { return latestMilliseconds }
        return Int64(milliseconds)
    }

    private static func floorDivision(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var quotient = value / divisor
        var remainder = value % divisor
        if remainder < 0 {
            quotient -= 1
            remainder += divisor
        }
        return (quotient, remainder)
    }

    /// Howard Hinnant's `civil_from_days`: proleptic Gregorian calendar, no tables, no Foundation.
    private static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = daysSinceEpoch + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// Howard Hinnant's `days_from_civil`, the inverse of ``civilDate(daysSinceEpoch:)``.
    private static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let year = month <= 2 ? year - 1 : year
        let era = (year >= 0 ? year : year - 399) / 400
        let yearOfEra = year - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2:
            let isLeap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            return isLeap ? 29 : 28
        case 4, 6, 9, 11:
            return 30
        default:
            return 31
        }
    }

    private static func appendDigits<Sink: ByteSink & ~Copyable>(_ value: Int64, count: Int, to sink: inout Sink) {
        var divisor: Int64 = 1
        for _ in 1..<count {
            divisor *= 10
        }
        while divisor > 0 {
            sink.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            divisor /= 10
        }
    }
}

/// A cursor over ASCII bytes for fixed-layout parsing.
private struct DigitReader<Bytes: RandomAccessCollection<UInt8>> {
    let bytes: Bytes
    var index: Bytes.Index

    init(bytes: Bytes) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    var isAtEnd: Bool { index == bytes.endIndex }

    mutating func skip(_ character: Unicode.Scalar) -> Bool {
        guard index != bytes.endIndex, bytes[index] == UInt8(ascii: character) else { return false }
        bytes.formIndex(after: &index)
        return true
    }

    mutating func digit() -> Int64? {
        guard index != bytes.endIndex else { return nil }
        let byte = bytes[index]
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        bytes.formIndex(after: &index)
        return Int64(byte - UInt8(ascii: "0"))
    }

    mutating func number(digits count: Int) -> Int64? {
        var value: Int64 = 0
        for _ in 0..<count {
            guard let digit = digit() else { return nil }
            value = value * 10 + digit
        }
        return value
    }
}
