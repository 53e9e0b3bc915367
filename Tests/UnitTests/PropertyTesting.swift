import Actors
import Foundation

/// Shared pieces of the property and fuzz tests: how many cases to run, a seeded generator,
/// and mutations of byte strings. Hand-rolled so a failing case is reproduced by its seed.
enum PropertyTesting {
    /// Cases per property: a quick pass in `make test`, many more under `CHAOS` (`make chaos`).
    static var iterations: Int {
        switch ProcessInfo.processInfo.environment["CHAOS"]?.lowercased() {
        case nil, "", "0", "off", "false": 1_500
        case "fast": 5_000
        default: 50_000
        }
    }

    /// Appends `{"property": ..., "cases": n}` to `$CHAOS_REPORT` (when set), so the reliability
    /// report shows how many cases each property ran.
    static func report(_ property: String, cases: Int) {
        guard let path = ProcessInfo.processInfo.environment["CHAOS_REPORT"], !path.isEmpty,
            let line = try? JSONSerialization.data(
                withJSONObject: ["property": property, "cases": cases], options: [.sortedKeys])
        else { return }
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: line + Data([0x0A]))
    }

    /// Applies 1-3 random edits: flip a bit, replace, delete or insert a byte, delete or
    /// duplicate a run, truncate.
    static func mutate(_ bytes: [UInt8], using random: inout SeededRandom) -> [UInt8] {
        var result = bytes
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            let position = result.isEmpty ? 0 : Int.random(in: 0..<result.count, using: &random)
            switch Int.random(in: 0..<7, using: &random) {
            case 0 where !result.isEmpty:
                result[position] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
            case 1 where !result.isEmpty:
                result[position] = interestingByte(using: &random)
            case 2 where !result.isEmpty:
                result.remove(at: position)
            case 3:
                result.insert(interestingByte(using: &random), at: position)
            case 4 where result.count > 1:
                let end = min(result.count, position + Int.random(in: 1...16, using: &random))
                result.removeSubrange(position..<end)
            case 5 where !result.isEmpty:
                let end = min(result.count, position + Int.random(in: 1...16, using: &random))
                result.insert(contentsOf: result[position..<end], at: position)
            default:
                result = Array(result.prefix(position))
            }
        }
        return result
    }

    /// Applies 1-2 single-byte edits (replace, insert or delete a random byte): mild enough that
    /// a fair share of the results stays valid, so a fast path and its reference both get used.
    static func editBytes(_ bytes: [UInt8], using random: inout SeededRandom) -> [UInt8] {
        var result = bytes
        for _ in 0..<Int.random(in: 1...2, using: &random) {
            let index = Int.random(in: 0..<result.count, using: &random)
            let byte = UInt8.random(in: 0...255, using: &random)
            switch Int.random(in: 0..<3, using: &random) {
            case 0: result[index] = byte
            case 1: result.insert(byte, at: index)
            default: result.remove(at: index)
            }
        }
        return result
    }

    /// Mostly bytes that matter to parsers (quotes, braces, escapes, digits, CR/LF, high bytes).
    static func interestingByte(using random: inout SeededRandom) -> UInt8 {
        let interesting =
            Array(#""{}[]:,\-+.0123456789eEtrufalsn$*:+-"#.utf8) + [
                0, 0x0D, 0x0A, 0x20, 0x7F, 0x80, 0xC3, 0xE2, 0xF0, 0xFF,
            ]
        return Bool.random(using: &random)
            ? interesting[Int.random(in: 0..<interesting.count, using: &random)]
            : UInt8.random(in: 0...255, using: &random)
    }

    /// A random string mixing ASCII, characters JSON must escape, and multi-byte scalars.
    static func text(maxLength: Int, using random: inout SeededRandom) -> String {
        let pieces: [String] = [
            "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "€", "😀", "\u{FEFF}",
            "\u{2028}",
        ]
        let length = Int.random(in: 0...maxLength, using: &random)
        return (0..<length).map { _ in pieces[Int.random(in: 0..<pieces.count, using: &random)] }.joined()
    }

    /// Whether `bytes` is one JSON text by the grammar of RFC 8259: the oracle the decoders are
    /// checked against. Written here, independent of the code under test; Foundation's parser
    /// would not do (it refuses valid numbers it cannot represent, such as `1e999`).
    static func isJSON(_ bytes: [UInt8]) -> Bool {
        guard String(validating: bytes, as: UTF8.self) != nil else { return false }
        var grammar = JSONGrammar(bytes: bytes)
        return grammar.value(depth: 0) && grammar.atEnd
    }
}

/// A recognizer for the JSON grammar (RFC 8259 §2-7); see ``PropertyTesting/isJSON(_:)``.
private struct JSONGrammar {
    let bytes: [UInt8]
    var offset = 0

    var atEnd: Bool {
        mutating get {
            skipWhitespace()
            return offset == bytes.count
        }
    }

    mutating func value(depth: Int) -> Bool {
        guard depth < 512 else { return false }
        skipWhitespace()
        guard let byte = peek() else { return false }
        switch byte {
        case UInt8(ascii: "{"):
            offset += 1
            skipWhitespace()
            if consume("}") { return true }
            repeat {
                skipWhitespace()
                guard string() else { return false }
                skipWhitespace()
                guard consume(":"), value(depth: depth + 1) else { return false }
                skipWhitespace()
            } while consume(",")
            return consume("}")
        case UInt8(ascii: "["):
            offset += 1
            skipWhitespace()
            if consume("]") { return true }
            repeat {
                guard value(depth: depth + 1) else { return false }
                skipWhitespace()
            } while consume(",")
            return consume("]")
        case UInt8(ascii: "\""): return string()
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default: return number()
        }
    }

    private mutating func string() -> Bool {
        guard consume("\"") else { return false }
        while let byte = peek() {
            offset += 1
            switch byte {
            case UInt8(ascii: "\""): return true
            case UInt8(ascii: "\\"):
                guard let escaped = peek() else { return false }
                offset += 1
                if escaped == UInt8(ascii: "u") {
                    for _ in 0..<4 {
                        guard let hex = peek(), isHexDigit(hex) else { return false }
                        offset += 1
                    }
                } else if !Array(#""\/bfnrt"#.utf8).contains(escaped) {
                    return false
                }
            case ..<0x20: return false
            default: continue
            }
        }
        return false
    }

    private mutating func number() -> Bool {
        _ = consume("-")
        if consume("0") {
            // no leading zeros
        } else {
            guard digits() else { return false }
        }
        if consume("."), !digits() { return false }
        if consume("e") || consume("E") {
            if !consume("+") { _ = consume("-") }
            guard digits() else { return false }
        }
        return true
    }

    private mutating func digits() -> Bool {
        let start = offset
        while let byte = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { offset += 1 }
        return offset > start
    }

    private mutating func literal(_ text: String) -> Bool {
        let expected = Array(text.utf8)
        guard bytes.count - offset >= expected.count, Array(bytes[offset..<offset + expected.count]) == expected else {
            return false
        }
        offset += expected.count
        return true
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), [0x20, 0x09, 0x0A, 0x0D].contains(byte) { offset += 1 }
    }

    private mutating func consume(_ character: Character) -> Bool {
        guard let byte = peek(), byte == character.asciiValue else { return false }
        offset += 1
        return true
    }

    private func peek() -> UInt8? { offset < bytes.count ? bytes[offset] : nil }

    private func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }
}
