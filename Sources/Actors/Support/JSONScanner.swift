/// A minimal pull parser over JSON bytes, for hot-path decoding without `JSONDecoder`.
///
/// Strict RFC 8259: no trailing commas, no leading zeros, no raw control characters or invalid
/// UTF-8 in strings, no lone surrogates in `\u` escapes, nesting bounded by ``maximumDepth``.
/// Syntax errors are ``DecodingFailure``s with reason `.notJSON`; callers add their own
/// type and field checks on top.
struct JSONScanner {
    /// The JSON kind of the next value.
    enum Kind: String {
        case object, array, string, number, bool, null
    }

    /// Deeper nesting is refused rather than risking the stack.
    static let maximumDepth = 64

    private let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The next byte as it is, whitespace not skipped; nil at the end. For readers of an exact
    /// layout, such as the stored form of an entry.
    var nextByte: UInt8? { offset < bytes.count ? bytes[offset] : nil }

    /// Whether every byte was consumed (trailing whitespace counts as a byte; see ``expectEnd()``).
    var isAtEnd: Bool { offset == bytes.count }

    /// The kind of the next value, after whitespace; a syntax error if there is none.
    mutating func peekKind() throws(DecodingFailure) -> Kind {
        skipWhitespace()
        guard offset < bytes.count else { throw syntaxError("unexpected end of input") }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t") where hasLiteral("true"), UInt8(ascii: "f") where hasLiteral("false"): return .bool
        case UInt8(ascii: "n") where hasLiteral("null"): return .null
        default: throw syntaxError("unexpected character")
        }
    }

    /// Consumes `{`.
    mutating func beginObject() throws(DecodingFailure) {
        try expect(UInt8(ascii: "{"))
    }

    /// The next key of the current object, with its `:` consumed, or `nil` at the closing brace
    /// (consumed too). `isFirst` must start `true` for each object.
    mutating func nextKey(isFirst: inout Bool) throws(DecodingFailure) -> ArraySlice<UInt8>? {
        guard try nextMember(closing: UInt8(ascii: "}"), isFirst: &isFirst) else { return nil }
        let (key, isASCII) = try scanString()
        guard isASCII || String(validating: key, as: UTF8.self) != nil else {
            throw syntaxError("invalid UTF-8 in key")
        }
        try expect(UInt8(ascii: ":"))
        return key
    }

    /// Before an object's key or an array's element: false at the `closing` brace or bracket
    /// (consumed), else true with the comma between members consumed.
    private mutating func nextMember(closing: UInt8, isFirst: inout Bool) throws(DecodingFailure) -> Bool {
        if consume(closing) {
            return false
        }
        if !isFirst {
            try expect(UInt8(ascii: ","))
        }
        isFirst = false
        return true
    }

    /// Consumes `[`.
    mutating func beginArray() throws(DecodingFailure) {
        try expect(UInt8(ascii: "["))
    }

    /// Whether another element follows in the current array; consumes the closing bracket when
    /// not. `isFirst` must start `true` for each array.
    mutating func nextElement(isFirst: inout Bool) throws(DecodingFailure) -> Bool {
        try nextMember(closing: UInt8(ascii: "]"), isFirst: &isFirst)
    }

    /// A string value, unescaped and checked to be valid UTF-8.
    mutating func readString() throws(DecodingFailure) -> String {
        let (utf8, isASCII) = try scanString()
        // ASCII needs no validation, and String(validating:) costs a generic-metadata lookup.
        if isASCII {
            return String(decoding: utf8, as: UTF8.self)
        }
        guard let string = String(validating: utf8, as: UTF8.self) else {
            throw syntaxError("invalid UTF-8 in string")
        }
        return string
    }

    /// A string value's unescaped bytes, not yet checked for UTF-8 validity (for values that
    /// are checked some other way, such as timestamps). Without escapes (the common case) this
    /// is a slice of the input, no copy.
    mutating func readStringBytes() throws(DecodingFailure) -> ArraySlice<UInt8> {
        try scanString().utf8
    }

    /// A string without escapes, checked (control characters, UTF-8): the range of its bytes
    /// between the quotes, with no copy and no reference to the input kept. Nil, with nothing
    /// consumed, when it holds an escape: the caller then reads it with
    /// ``readValidatedStringBytes()``.
    /// The hot path of the upstream parser, which copies such strings as they are.
    mutating func readPlainString() throws(DecodingFailure) -> Range<Int>? {
        skipWhitespace()
        let quote = offset
        try expect(UInt8(ascii: "\""))
        let start = offset
        let run = try scanPlainRun()
        guard run.closed else {
            offset = quote
            return nil
        }
        let range = start..<(offset - 1)
        guard run.isASCII || UTF8Validation.isValid(bytes[range]) else { throw syntaxError("invalid UTF-8 in string") }
        return range
    }

    /// Like ``nextKey(isFirst:)``, but the key comes back as a range of the input (compare it
    /// with ``bytes(in:equal:)``), so that nothing holds on to the input; throws at a key with an
    /// escape.
    mutating func nextKeyRange(isFirst: inout Bool) throws(DecodingFailure) -> Range<Int>? {
        guard try nextMember(closing: UInt8(ascii: "}"), isFirst: &isFirst) else { return nil }
        // A key with an escape is left to slower readers (``nextKey(isFirst:)``): no key the
        // hot paths look for has one.
        guard let key = try readPlainString() else { throw syntaxError("escaped key") }
        try expect(UInt8(ascii: ":"))
        return key
    }

    /// Whether the input bytes in `range` are exactly `literal`.
    func bytes(in range: Range<Int>, equal literal: StaticString) -> Bool {
        bytes.withUnsafeBufferPointer { Self.buffer(UnsafeBufferPointer(rebasing: $0[range]), equal: literal) }
    }

    /// Appends the input bytes in `range` to `output`, one copy.
    func copy(_ range: Range<Int>, to output: inout [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            output.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[range]))
        }
    }

    /// A string value's unescaped bytes, checked to be valid UTF-8 (for writers that escape
    /// them again rather than build a `String`).
    mutating func readValidatedStringBytes() throws(DecodingFailure) -> ArraySlice<UInt8> {
        let (utf8, isASCII) = try scanString()
        guard isASCII || UTF8Validation.isValid(utf8) else { throw syntaxError("invalid UTF-8 in string") }
        return utf8
    }

    /// Whether a key or string read with ``readStringBytes()`` is exactly `literal`.
    static func bytes(_ utf8: ArraySlice<UInt8>, equal literal: StaticString) -> Bool {
        utf8.withUnsafeBufferPointer { buffer($0, equal: literal) }
    }

    private static func buffer(_ utf8: UnsafeBufferPointer<UInt8>, equal literal: StaticString) -> Bool {
        guard utf8.count == literal.utf8CodeUnitCount else { return false }
        // A plain loop: the generic elementsEqual stays unspecialized here and showed in profiles.
        return literal.withUTF8Buffer { expected in
            for index in 0..<expected.count where utf8[index] != expected[index] {
                return false
            }
            return true
        }
    }

    private mutating func scanString() throws(DecodingFailure) -> (utf8: ArraySlice<UInt8>, isASCII: Bool) {
        try expect(UInt8(ascii: "\""))
        let start = offset
        // Fast path: no escapes, the common case; a slice of the input.
        let run = try scanPlainRun()
        if run.closed {
            return (bytes[start..<(offset - 1)], run.isASCII)
        }
        var unescaped = Array(bytes[start..<offset])
        while offset < bytes.count {
            let byte = bytes[offset]
            offset += 1
            switch byte {
            case UInt8(ascii: "\""):
                // Escapes may produce non-ASCII; let the caller validate.
                return (unescaped[...], false)
            case UInt8(ascii: "\\"):
                try readEscape(into: &unescaped)
            case ..<0x20:
                throw syntaxError("control character in string")
            default:
                unescaped.append(byte)
            }
        }
        throw syntaxError("unterminated string")
    }

    /// Consumes a string's bytes up to its closing quote (consumed too: `closed`) or up to its
    /// first backslash (not consumed), refusing control characters; whether they were all
    /// ASCII. Past the end of the input the string is unterminated.
    @inline(__always)
    private mutating func scanPlainRun() throws(DecodingFailure) -> (closed: Bool, isASCII: Bool) {
        var highBits: UInt8 = 0
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                offset += 1
                return (true, highBits < 0x80)
            }
            if byte == UInt8(ascii: "\\") {
                return (false, highBits < 0x80)
            }
            guard byte >= 0x20 else { throw syntaxError("control character in string") }
            highBits |= byte
            offset += 1
        }
        throw syntaxError("unterminated string")
    }

    /// A number that is a JSON integer within `Int64`; `nil` for a valid JSON number that is not
    /// (a fraction, an exponent, out of range). The number is consumed either way.
    mutating func readInt64() throws(DecodingFailure) -> Int64? {
        skipWhitespace()
        let isNegative = consume(UInt8(ascii: "-"), skippingWhitespace: false)
        guard let firstDigit = digit() else { throw syntaxError("invalid number") }
        // Accumulate negatively so that Int64.min fits.
        var value = -Int64(firstDigit)
        var fits = true
        if firstDigit == 0, digit() != nil {
            throw syntaxError("leading zero in number")
        }
        while let next = digit() {
            let (shifted, overflowShift) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowSum) = shifted.subtractingReportingOverflow(Int64(next))
            fits = fits && !overflowShift && !overflowSum
            value = sum
        }
        if try skipFractionAndExponent() {
            fits = false
        }
        if isNegative {
            return fits ? value : nil
        }
        guard fits, value != .min else { return nil }
        return -value
    }

    /// A number as a `Double`; `nil` if it does not fit (e.g. `1e400`).
    mutating func readDouble() throws(DecodingFailure) -> Double? {
        skipWhitespace()
        let start = offset
        if let integer = try readInt64() {
            return Double(integer)
        }
        guard let value = Double(String(decoding: bytes[start..<offset], as: UTF8.self)), value.isFinite else {
            return nil
        }
        return value
    }

    /// Consumes `true` or `false`.
    mutating func readBool() throws(DecodingFailure) -> Bool {
        skipWhitespace()
        if consumeLiteral("true") { return true }
        if consumeLiteral("false") { return false }
        throw syntaxError("invalid literal")
    }

    /// Consumes `null`.
    mutating func readNull() throws(DecodingFailure) {
        skipWhitespace()
        guard consumeLiteral("null") else { throw syntaxError("invalid literal") }
    }

    /// Consumes the next value, whatever it is, checking its syntax.
    mutating func skipValue(depth: Int = 0) throws(DecodingFailure) {
        guard depth < Self.maximumDepth else { throw syntaxError("nesting too deep") }
        switch try peekKind() {
        case .object:
            try beginObject()
            var isFirst = true
            while try nextKey(isFirst: &isFirst) != nil {
                try skipValue(depth: depth + 1)
            }
        case .array:
            try beginArray()
            var isFirst = true
            while try nextElement(isFirst: &isFirst) {
                try skipValue(depth: depth + 1)
            }
        case .string:
            _ = try readString()
        case .number:
            _ = try readInt64()
        case .bool:
            _ = try readBool()
        case .null:
            try readNull()
        }
    }

    /// Checks that only whitespace is left.
    mutating func expectEnd() throws(DecodingFailure) {
        skipWhitespace()
        guard offset == bytes.count else { throw syntaxError("unexpected content after the value") }
    }

    private mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                offset += 1
            default:
                return
            }
        }
    }

    private mutating func consume(_ byte: UInt8, skippingWhitespace: Bool = true) -> Bool {
        if skippingWhitespace {
            skipWhitespace()
        }
        guard offset < bytes.count, bytes[offset] == byte else { return false }
        offset += 1
        return true
    }

    private mutating func expect(_ byte: UInt8) throws(DecodingFailure) {
        guard consume(byte) else {
            throw syntaxError("expected '\(Character(Unicode.Scalar(byte)))'")
        }
    }

    private func hasLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        return bytes.count - offset >= count && bytes(in: offset..<(offset + count), equal: literal)
    }

    /// Consumes `literal` if the input continues with it, whitespace not skipped.
    mutating func consumeLiteral(_ literal: StaticString) -> Bool {
        guard hasLiteral(literal) else { return false }
        offset += literal.utf8CodeUnitCount
        return true
    }

    private mutating func digit() -> UInt8? {
        guard offset < bytes.count else { return nil }
        let byte = bytes[offset]
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        offset += 1
        return byte - UInt8(ascii: "0")
    }

    /// Consumes `.digits` and `e[+-]digits` if present; whether there were any.
    private mutating func skipFractionAndExponent() throws(DecodingFailure) -> Bool {
        var found = false
        if consume(UInt8(ascii: "."), skippingWhitespace: false) {
            guard digit() != nil else { throw syntaxError("invalid number") }
            while digit() != nil {}
            found = true
        }
        if consume(UInt8(ascii: "e"), skippingWhitespace: false)
            || consume(UInt8(ascii: "E"), skippingWhitespace: false)
        {
            _ =
                consume(UInt8(ascii: "+"), skippingWhitespace: false)
                || consume(UInt8(ascii: "-"), skippingWhitespace: false)
            guard digit() != nil else { throw syntaxError("invalid number") }
            while digit() != nil {}
            found = true
        }
        return found
    }

    private mutating func readEscape(into output: inout [UInt8]) throws(DecodingFailure) {
        guard offset < bytes.count else { throw syntaxError("unterminated escape") }
        let byte = bytes[offset]
        offset += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(byte)
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = UInt32(try readHex4())
            if (0xD800..<0xDC00).contains(scalar) {
                guard consumeLiteral("\\u") else { throw syntaxError("lone surrogate") }
                let low = UInt32(try readHex4())
                guard (0xDC00..<0xE000).contains(low) else { throw syntaxError("lone surrogate") }
                scalar = 0x10000 + (scalar - 0xD800) << 10 + (low - 0xDC00)
            }
            guard Unicode.Scalar(scalar) != nil else { throw syntaxError("lone surrogate") }
            Self.appendUTF8(scalar, to: &output)
        default:
            throw syntaxError("invalid escape")
        }
    }

    /// `scalar` must be a valid Unicode scalar value.
    private static func appendUTF8(_ scalar: UInt32, to output: inout [UInt8]) {
        switch scalar {
        case ..<0x80:
            output.append(UInt8(scalar))
        case ..<0x800:
            output.append(UInt8(0xC0 | scalar >> 6))
            output.append(UInt8(0x80 | scalar & 0x3F))
        case ..<0x10000:
            output.append(UInt8(0xE0 | scalar >> 12))
            output.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            output.append(UInt8(0x80 | scalar & 0x3F))
        default:
            output.append(UInt8(0xF0 | scalar >> 18))
            output.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            output.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            output.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    private mutating func readHex4() throws(DecodingFailure) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard offset < bytes.count else { throw syntaxError("unterminated escape") }
            let byte = bytes[offset]
            offset += 1
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: throw syntaxError("invalid \\u escape")
            }
            value = value << 4 | UInt16(nibble)
        }
        return value
    }

    private func syntaxError(_ message: String) -> DecodingFailure {
        DecodingFailure(reason: .notJSON, path: "$", detail: "\(message) at byte \(offset)")
    }
}
