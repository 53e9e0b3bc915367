import Foundation
import Testing

@testable import Actors

@Suite("JSONScanner")
struct JSONScannerTests {
    /// Whether the scanner accepts `text` as one JSON value.
    static func scannerAccepts(_ bytes: [UInt8]) -> Bool {
        var scanner = JSONScanner(bytes)
        do {
            try scanner.skipValue()
            try scanner.expectEnd()
            return true
        } catch {
            #expect(error.reason == .notJSON)
            return false
        }
    }

    static func foundationAccepts(_ bytes: [UInt8]) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
    }

    @Test(arguments: [
        "{}", "[]", "0", "-0", "12", "-12.5e+3", "1E9", "0.5", "true", "false", "null", #""""#, #""a\"b\\c\/d""#,
        #""\b\f\n\r\t""#, #""\u00e9\u20AC""#, #""\ud83d\ude00""#, " \n\t{ \"a\" : [ 1 , { } ] } \r\n",
        #"{"a":{"b":{"c":[null,true,"x"]}}}"#, #""é😀""#, "[1,2,3]",
    ])
    func acceptsValidJSON(_ text: String) {
        #expect(Self.scannerAccepts(Array(text.utf8)), "\(text)")
        #expect(Self.foundationAccepts(Array(text.utf8)), "\(text)")
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{,}", "[,1]", "01", "-", "1.", ".5", "1e", "1e+", "+1", "--1",
        "tru", "True", "nul", "nulll", "[1 2]", #"{"a" 1}"#, #"{a:1}"#, "'a'", #""abc"#, #""\x""#, #""\u12""#,
        #""\u12G4""#, #""\ud800""#, #""\ud800x""#, #""\udc00""#, #""\ud800\u0041""#, "\"a\u{1}b\"", "\"tab\there\"",
        "1 2", "{} {}", "[]]", "NaN", "Infinity",
    ])
    func rejectsInvalidJSON(_ text: String) {
        #expect(!Self.scannerAccepts(Array(text.utf8)), "\(text)")
    }

    @Test(
        arguments: [
            [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xC0, 0xAF, 0x22],
        ] as [[UInt8]])
    func rejectsInvalidUTF8InStrings(_ bytes: [UInt8]) {
        #expect(!Self.scannerAccepts(bytes))
    }

    @Test func boundsNesting() {
        let shallow =
            String(repeating: "[", count: JSONScanner.maximumDepth)
            + String(repeating: "]", count: JSONScanner.maximumDepth)
        #expect(Self.scannerAccepts(Array(shallow.utf8)))
        let deep = String(repeating: "[", count: 100_000)
        #expect(!Self.scannerAccepts(Array(deep.utf8)))
    }

    @Test func unescapesStrings() throws {
        var scanner = JSONScanner(Array(#""q\"b\\s\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00""#.utf8))
        #expect(try scanner.readString() == "q\"b\\s/\u{8}\u{C}\n\r\tAé😀")
    }

    @Test(arguments: [
        ("0", Int64?.some(0)), ("-0", 0), ("42", 42), ("-42", -42),
        ("9223372036854775807", .max), ("-9223372036854775808", .min),
        ("9223372036854775808", nil), ("-9223372036854775809", nil), ("99999999999999999999999", nil),
        ("1.0", nil), ("1e3", nil), ("-2.5E-3", nil),
    ])
    func readsIntegers(_ text: String, _ expected: Int64?) throws {
        var scanner = JSONScanner(Array(text.utf8))
        #expect(try scanner.readInt64() == expected)
        try scanner.expectEnd()
    }

    @Test(arguments: [
        ("0", Double?.some(0)), ("-12", -12), ("1.5", 1.5), ("-2.5e-3", -0.0025), ("1E3", 1000),
        ("9223372036854775808", 9_223_372_036_854_775_808), ("1e400", nil), ("-1e400", nil),
    ])
    func readsDoubles(_ text: String, _ expected: Double?) throws {
        var scanner = JSONScanner(Array(text.utf8))
        #expect(try scanner.readDouble() == expected)
        try scanner.expectEnd()
    }

    @Test func agreesWithFoundationOnRandomMutations() {
        var random = SeededRandom(seed: 99)
        let seeds = [
            #"{"a":[1,-2.5e3,true,false,null,"x\"y\u00e9"],"b":{"c":"d"}}"#,
            #"["é😀",{"k":[[]]},0.25,"\n"]"#,
        ].map { Array($0.utf8) }
        let alphabet = Array(#"{}[]",:\-+.eE0123456789tfnulrsa uU"#.utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xFF]
        for _ in 0..<4000 {
            var bytes = seeds[Int.random(in: 0..<seeds.count, using: &random)]
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let index = Int.random(in: 0..<bytes.count, using: &random)
                let byte = alphabet[Int.random(in: 0..<alphabet.count, using: &random)]
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[index] = byte
                case 1: bytes.insert(byte, at: index)
                default: if bytes.count > 1 { bytes.remove(at: index) }
                }
            }
            let ours = Self.scannerAccepts(bytes)
            // Foundation is laxer in places (it accepts lone surrogate escapes), so only demand
            // that whatever the scanner accepts is JSON to Foundation too.
            if ours {
                #expect(Self.foundationAccepts(bytes), "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
    }
}
