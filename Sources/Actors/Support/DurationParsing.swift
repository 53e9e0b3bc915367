/// Parses a configuration duration: `500ms`, `30s`, `15m`, `1h`, `1d`, or a plain number of
/// seconds (`30`).
///
/// Units may be combined from largest to smallest, each at most once (`1h30m`, `1s500ms`), which
/// is what ``formatDuration(_:)`` writes. Returns `nil` for anything else: empty text, signs,
/// spaces, fractions, unknown or upper-case units, units out of order, or values beyond about
/// 292 million years.
public func parseDuration(_ text: String) -> Duration? {
    let utf8 = Array(text.utf8)
    guard !utf8.isEmpty else { return nil }
    if utf8.allSatisfy(isDigit) {
        guard let seconds = Int64(text), let milliseconds = multiply(seconds, by: 1000) else { return nil }
        return .milliseconds(milliseconds)
    }

    var totalMilliseconds: Int64 = 0
    var smallestUnitSoFar = Int64.max
    var index = 0
    while index < utf8.count {
        let digitsStart = index
        while index < utf8.count, isDigit(utf8[index]) {
            index += 1
        }
        let unitStart = index
        while index < utf8.count, !isDigit(utf8[index]) {
            index += 1
        }
        guard digitsStart < unitStart,
            let value = Int64(String(decoding: utf8[digitsStart..<unitStart], as: UTF8.self)),
            let unit = millisecondsPerUnit(utf8[unitStart..<index]),
            unit < smallestUnitSoFar,
            let part = multiply(value, by: unit)
        else { return nil }
        let (sum, overflow) = totalMilliseconds.addingReportingOverflow(part)
        guard !overflow else { return nil }
        totalMilliseconds = sum
        smallestUnitSoFar = unit
    }
    return .milliseconds(totalMilliseconds)
}

/// Writes `duration` in the form ``parseDuration(_:)`` reads, using the largest units that fit
/// exactly: `15m`, `500ms`, `1h30m`, `0s`. Negative durations get a leading `-`. A duration with
/// precision finer than a millisecond has no such form and is written in Swift's own notation
/// (`0.0015 seconds`).
public func formatDuration(_ duration: Duration) -> String {
    if duration < .zero {
        return "-" + formatDuration(.zero - duration)
    }
    let (seconds, attoseconds) = duration.components
    let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
    guard attoseconds % attosecondsPerMillisecond == 0 else { return "\(duration)" }
    if seconds == 0 && attoseconds == 0 {
        return "0s"
    }
    let parts: [(value: Int64, unit: String)] = [
        (seconds / 86_400, "d"),
        (seconds % 86_400 / 3600, "h"),
        (seconds % 3600 / 60, "m"),
        (seconds % 60, "s"),
        (attoseconds / attosecondsPerMillisecond, "ms"),
    ]
    var text = ""
    for part in parts where part.value != 0 {
        text += "\(part.value)\(part.unit)"
    }
    return text
}

private func isDigit(_ byte: UInt8) -> Bool {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
}

private func millisecondsPerUnit(_ unit: ArraySlice<UInt8>) -> Int64? {
    switch String(decoding: unit, as: UTF8.self) {
    case "ms": 1
    case "s": 1000
    case "m": 60_000
    case "h": 3_600_000
    case "d": 86_400_000
    default: nil
    }
}

private func multiply(_ value: Int64, by factor: Int64) -> Int64? {
    let (product, overflow) = value.multipliedReportingOverflow(by: factor)
    return overflow ? nil : product
}
