public import Foundation

/// Reads a `Retry-After` header value (RFC 9110 §10.2.3): delay seconds (`120`) or an
/// HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`), relative to `now`.
///
/// Returns nil for anything else, so a garbled header falls back to the caller's own backoff
/// instead of failing the call. A date in the past is a zero wait.
public func parseRetryAfter(_ value: String, now: Date = Date()) -> Duration? {
    let text = value.trimmingCharacters(in: .whitespaces)
    guard !text.isEmpty else { return nil }
    if text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
        // Absurdly long numbers saturate instead of failing: "wait very long" is still the meaning.
        guard let seconds = Int64(text) else { return .seconds(Int64.max / 1_000_000_000) }
        return .seconds(seconds)
    }
    guard let date = httpDateFormatter().date(from: text) else { return nil }
    let interval = date.timeIntervalSince(now)
    return interval <= 0 ? .zero : .milliseconds(Int64((interval * 1000).rounded(.up)))
}

/// IMF-fixdate, the one HTTP-date form senders must use. A new formatter per parse: a
/// `DateFormatter` is not thread-safe, and Retry-After dates are rare.
private func httpDateFormatter() -> DateFormatter {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "GMT")
    formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    return formatter
}
