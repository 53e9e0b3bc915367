import ChatRuntime

/// Helpers for encoders that size their output first and write it with a ``ByteArrayWriter``:
/// strings that need no escaping (nearly all) are copied as they are; one that does sends the
/// encoder to ``JSONWriter``, which escapes (`"` and `\` get a backslash, bytes below 0x20
/// become `\u00XX`).
enum JSONEscaping {
    /// Whether any byte of `utf8` needs escaping; false for nearly every string. Branch-free,
    /// so the loop has no unpredictable jumps.
    @inline(__always)
    static func needsEscaping(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        var found: UInt8 = 0
        for byte in utf8 {
            found |= (byte < 0x20 ? 1 : 0) | (byte == UInt8(ascii: "\"") ? 1 : 0) | (byte == UInt8(ascii: "\\") ? 1 : 0)
        }
        return found != 0
    }

    /// The length of `text` as a quoted JSON string when it needs no escaping.
    @inline(__always)
    static func plainQuotedCount(_ text: String) -> Int {
        text.utf8.count + 2
    }

    /// Writes `text` as a quoted JSON string and returns true, or writes nothing and returns
    /// false when it needs escaping (the caller then takes the escaping path).
    @inline(__always)
    static func writePlainQuoted(_ text: String, to writer: inout ByteArrayWriter) -> Bool {
        let written = text.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
            guard !needsEscaping(utf8) else { return false }
            writer.append(UInt8(ascii: "\""))
            writer.append(utf8)
            writer.append(UInt8(ascii: "\""))
            return true
        }
        return written ?? false
    }

    /// The number of characters of `value` in decimal, sign included.
    static func decimalCount(_ value: Int64) -> Int {
        var remaining = value.magnitude
        var count = value < 0 ? 2 : 1
        while remaining >= 10 {
            remaining /= 10
            count += 1
        }
        return count
    }

    /// Writes `value` in decimal.
    static func writeInteger(_ value: Int64, to writer: inout ByteArrayWriter) {
        if value < 0 { writer.append(UInt8(ascii: "-")) }
        let magnitude = value.magnitude
        var divisor: UInt64 = 1
        while divisor <= magnitude / 10 { divisor *= 10 }
        while divisor > 0 {
            writer.append(UInt8(ascii: "0") + UInt8(magnitude / divisor % 10))
            divisor /= 10
        }
    }
}
