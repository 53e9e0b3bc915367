/// Percent-decoding of request targets: path segments and query strings.
///
/// Strict on purpose: a `%` not followed by two hex digits, or bytes that do not form UTF-8,
/// make the whole target invalid (the server answers 400) instead of reaching a handler as a
/// half-decoded string.
enum URLDecoding {
    /// The decoded segments of `rawPath` (`/a/b%2Fc/` gives `["a", "b/c"]`), or nil when the
    /// path does not start with `/` or holds an invalid escape.
    ///
    /// Segments are split before decoding, so an encoded slash stays inside its segment.
    /// Trailing-slash policy: one trailing slash is ignored (`/a/` matches like `/a`); empty
    /// segments elsewhere (`/a//b`) are kept, so they match no route.
    static func pathSegments(_ rawPath: Substring) -> [String]? {
        guard rawPath.first == "/" else { return nil }
        var body = rawPath.dropFirst()
        if body.last == "/" { body = body.dropLast() }
        if body.isEmpty { return [] }
        var segments: [String] = []
        segments.reserveCapacity(8)
        // Split on the UTF-8 bytes: splitting the Substring would walk it Character by
        // Character, and a generic split builds an array of slices; both showed in profiles.
        let utf8 = body.utf8
        var start = utf8.startIndex
        while true {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
            guard let segment = percentDecode(body[start..<end], plusAsSpace: false) else { return nil }
            segments.append(segment)
            guard end < utf8.endIndex else { return segments }
            start = utf8.index(after: end)
        }
    }

    /// The query parameters of `rawQuery` (`a=1&b=x+y`), first occurrence winning; nil when an
    /// escape is invalid. A key without `=` gets an empty value; empty pieces are skipped.
    static func queryParameters(_ rawQuery: Substring) -> [String: String]? {
        var parameters: [String: String] = [:]
        for piece in rawQuery.split(separator: "&") {
            let key: Substring
            let value: Substring
            if let equals = piece.firstIndex(of: "=") {
                key = piece[..<equals]
                value = piece[piece.index(after: equals)...]
            } else {
                key = piece
                value = ""
            }
            guard let decodedKey = percentDecode(key, plusAsSpace: true),
                let decodedValue = percentDecode(value, plusAsSpace: true)
            else { return nil }
            if parameters[decodedKey] == nil { parameters[decodedKey] = decodedValue }
        }
        return parameters
    }

    /// `text` with `%XX` escapes (and `+`, when `plusAsSpace`) decoded; nil when an escape is
    /// malformed or the result is not UTF-8.
    static func percentDecode(_ text: Substring, plusAsSpace: Bool) -> String? {
        let utf8 = text.utf8
        let needsWork = utf8.contains { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) }
        if !needsWork { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let high = utf8.index(after: index)
                guard high != utf8.endIndex else { return nil }
                let low = utf8.index(after: high)
                guard low != utf8.endIndex,
                    let h = hexValue(utf8[high]), let l = hexValue(utf8[low])
                else { return nil }
                bytes.append(h << 4 | l)
                index = utf8.index(after: low)
            } else {
                bytes.append(plusAsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                index = utf8.index(after: index)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
