import CLibEvent
import Foundation

/// The `Date` header value (RFC 9110 IMF-fixdate, `Tue, 25 Nov 2026 14:30:00 GMT`), formatted
/// once per second instead of once per reply. Loop-confined, like the server that owns it.
struct HTTPDateHeader {
    private var second: time_t = -1
    private var value = ""

    /// The value for now.
    mutating func current() -> String {
        let now = time(nil)
        if now != second {
            second = now
            value = Self.format(now)
        }
        return value
    }

    static func format(_ seconds: time_t) -> String {
        var moment = seconds
        var parts = tm()
        gmtime_r(&moment, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let length = evutil_date_rfc1123(&buffer, buffer.count, &parts)
        return String(
            decoding: buffer.prefix(max(0, min(Int(length), buffer.count - 1))).map { UInt8(bitPattern: $0) },
            as: UTF8.self)
    }
}
