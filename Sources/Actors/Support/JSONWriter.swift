public import Foundation

/// Builds JSON text directly into a byte buffer.
///
/// Hot-path responses are written by hand rather than through `JSONEncoder`: no intermediate
/// containers, no key sorting, one growing buffer. The writer only produces tokens; callers are
/// responsible for the structure (commas, braces) and keys come in as static strings that must
/// already be valid JSON.
public struct JSONWriter: Sendable {
    /// The JSON text written so far, as UTF-8.
    public private(set) var bytes: [UInt8]

    /// Starts an empty buffer with room for `capacity` bytes.
    public init(reservingCapacity capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Appends `text` verbatim; it must be valid JSON (punctuation, keys in quotes, literals).
    public mutating func appendRaw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Appends one ASCII byte verbatim, typically `{`, `}`, `[`, `]`, `,` or `:`.
    public mutating func appendRaw(ascii byte: UInt8) {
        bytes.append(byte)
    }

    /// Appends the string whose bytes (no escape, checked) are `range` of the scanner's input,
    /// in quotes.
    mutating func appendQuoted(_ range: Range<Int>, of scanner: JSONScanner) {
        bytes.append(Self.quote)
        scanner.copy(range, to: &bytes)
        bytes.append(Self.quote)
    }

    /// Forgets what was written, keeping the buffer's capacity for the next text.
    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
    }

    /// Appends `utf8`, which the caller has checked to be valid UTF-8, as a quoted JSON string,
    /// escaped exactly as ``appendString(_:)`` escapes.
    mutating func appendString(utf8: ArraySlice<UInt8>) {
        bytes.append(Self.quote)
        appendEscapedRuns(utf8)
        bytes.append(Self.quote)
    }

    /// Appends `text` as a quoted JSON string.
    ///
    /// Quotes and backslashes are escaped, control characters below U+0020 become `\u00XX`, and
    /// everything else, including non-ASCII UTF-8, is copied as it is. A Swift `String` always holds
    /// valid UTF-8, so the output is always valid JSON.
    public mutating func appendString(_ text: String) {
        bytes.append(Self.quote)
        let copied: Void? = text.utf8.withContiguousStorageIfAvailable { appendEscaped($0) }
        if copied == nil {
            appendEscaped(Array(text.utf8))
        }
        bytes.append(Self.quote)
    }

    /// Appends `text` as a JSON string, or `null` when it is `nil`.
    public mutating func appendString(orNull text: String?) {
        if let text {
            appendString(text)
        } else {
            appendNull()
        }
    }

    /// Appends a decimal integer without going through `String`.
    public mutating func appendInteger(_ value: Int64) {
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
        }
        var magnitude = value.magnitude
        let start = bytes.count
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude != 0
        bytes[start...].reverse()
    }

    /// Appends `true` or `false`.
    public mutating func appendBool(_ value: Bool) {
        if value {
            appendRaw("true")
        } else {
            appendRaw("false")
        }
    }

    /// Appends `null`.
    public mutating func appendNull() {
        appendRaw("null")
    }

    /// Appends `date` as a quoted ISO-8601 timestamp with milliseconds (see ``ISO8601Timestamp``).
    public mutating func appendTimestamp(_ date: Date) {
        bytes.append(Self.quote)
        ISO8601Timestamp.append(date, to: &bytes)
        bytes.append(Self.quote)
    }

    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Copies runs of bytes that need no escaping in one go; most strings are a single run,
    /// found by a vectorized scan first.
    private mutating func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>) {
        if !JSONEscaping.needsEscaping(utf8) {
            bytes.append(contentsOf: utf8)
            return
        }
        appendEscapedRuns(utf8)
    }

    private mutating func appendEscaped(_ utf8: [UInt8]) {
        utf8.withUnsafeBufferPointer { appendEscaped($0) }
    }

    private mutating func appendEscapedRuns<Bytes: RandomAccessCollection<UInt8>>(_ utf8: Bytes)
    where Bytes.Index == Int {
        var runStart = utf8.startIndex
        var index = runStart
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte >= 0x20 && byte != Self.quote && byte != Self.backslash {
                index += 1
                continue
            }
            bytes.append(contentsOf: utf8[runStart..<index])
            bytes.append(Self.backslash)
            if byte < 0x20 {
                bytes.append(UInt8(ascii: "u"))
                bytes.append(UInt8(ascii: "0"))
                bytes.append(UInt8(ascii: "0"))
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0xF)])
            } else {
                bytes.append(byte)
            }
            index += 1
            runStart = index
        }
        bytes.append(contentsOf: utf8[runStart..<utf8.endIndex])
    }
}
