import Runtime

/// JSON strings as ``JSONWriter`` writes them (`"` and `\` get a backslash, bytes below 0x20
/// become `\u00XX`, everything else is copied), for encoders that size their output first and
/// write it with a ``ByteArrayWriter``.
enum JSONEscaping {
    /// How many bytes escaping adds to `utf8`: 0 for nearly every string. Branch-free, so the
    /// compiler vectorizes the loop.
    @inline(__always)
    static func extraBytes(_ utf8: UnsafeBufferPointer<UInt8>) -> Int {
        var extra = 0
        for byte in utf8 {
            extra &+= (byte < 0x20 ? 5 : 0) &+ (byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") ? 1 : 0)
        }
        return extra
    }

    /// The length of `text` as a quoted JSON string.
    static func quotedCount(_ text: String) -> Int {
        let counted = text.utf8.withContiguousStorageIfAvailable { $0.count + extraBytes($0) }
        if let counted { return counted + 2 }
        return Array(text.utf8).withUnsafeBufferPointer { $0.count + extraBytes($0) } + 2
    }

    /// Writes `text` as a quoted JSON string; the writer must have room for ``quotedCount(_:)``.
    static func writeQuoted(_ text: String, to writer: inout ByteArrayWriter) {
        writer.append(UInt8(ascii: "\""))
        let written: Void? = text.utf8.withContiguousStorageIfAvailable { utf8 in
            if extraBytes(utf8) == 0 {
                writer.append(utf8)
            } else {
                writeEscaped(utf8, to: &writer)
            }
        }
        if written == nil {
            Array(text.utf8).withUnsafeBufferPointer { writeEscaped($0, to: &writer) }
        }
        writer.append(UInt8(ascii: "\""))
    }

    private static let hexDigits: StaticString = "0123456789abcdef"

    private static func writeEscaped(_ utf8: UnsafeBufferPointer<UInt8>, to writer: inout ByteArrayWriter) {
        for byte in utf8 {
            if byte < 0x20 {
                writer.append(#"\u00"#)
                writer.append(hexDigits.utf8Start[Int(byte >> 4)])
                writer.append(hexDigits.utf8Start[Int(byte & 0xF)])
            } else if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                writer.append(UInt8(ascii: "\\"))
                writer.append(byte)
            } else {
                writer.append(byte)
            }
        }
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
