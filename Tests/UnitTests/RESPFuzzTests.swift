import CHiredis
import Testing

@testable import Actors
@testable import ChatRuntime

/// The reply path the connection uses (hiredis' reader, then ``RESPValue/init(reply:)``) fed
/// generated, split, truncated and mutated byte streams: values round-trip whatever the chunking,
/// a truncated reply is never taken for a whole one, a stream that does not start with a RESP
/// type byte is refused, and nothing traps.
@Suite("RESP reply fuzzing")
struct RESPFuzzTests {
    /// What one feed of bytes gave.
    enum ReaderResult: Equatable {
        case values([RESPValue])
        /// hiredis refused the stream (protocol error); values read before it.
        case protocolError([RESPValue])
    }

    /// Feeds `chunks` one by one and collects every complete reply, as the connection does.
    static func read(_ chunks: [[UInt8]]) -> ReaderResult {
        guard let reader = redisReaderCreate() else { return .protocolError([]) }
        defer { redisReaderFree(reader) }
        var values: [RESPValue] = []
        for chunk in chunks {
            let fed = chunk.withUnsafeBufferPointer {
                $0.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
            }
            guard fed == REDIS_OK else { return .protocolError(values) }
            while true {
                var reply: UnsafeMutableRawPointer?
                guard redisReaderGetReply(reader, &reply) == REDIS_OK else { return .protocolError(values) }
                guard let reply else { break }
                values.append(RESPValue(reply: reply.assumingMemoryBound(to: redisReply.self)))
                freeReplyObject(reply)
            }
        }
        return .values(values)
    }

    static func randomValue(depth: Int = 0, using random: inout SeededRandom) -> RESPValue {
        let safe = Array("abcXYZ019 -_:+$*")
        func line() -> String {
            String(
                (0..<Int.random(in: 0...20, using: &random)).map { _ in
                    safe[Int.random(in: 0..<safe.count, using: &random)]
                })
        }
        switch Int.random(in: 0..<(depth < 3 ? 6 : 5), using: &random) {
        case 0: return .simpleString(line())
        case 1: return .error(line())
        case 2: return .integer(Int64.random(in: Int64.min...Int64.max, using: &random))
        case 3:
            return .bulkString(
                (0..<Int.random(in: 0...100, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
        case 4: return .null
        default:
            return .array(
                (0..<Int.random(in: 0...5, using: &random)).map { _ in randomValue(depth: depth + 1, using: &random) })
        }
    }

    static func encode(_ value: RESPValue) -> [UInt8] {
        switch value {
        case .simpleString(let text): return Array("+\(text)\r\n".utf8)
        case .error(let text): return Array("-\(text)\r\n".utf8)
        case .integer(let number): return Array(":\(number)\r\n".utf8)
        case .bulkString(let bytes): return Array("$\(bytes.count)\r\n".utf8) + bytes + Array("\r\n".utf8)
        case .null: return Array("$-1\r\n".utf8)
        case .array(let elements): return Array("*\(elements.count)\r\n".utf8) + elements.flatMap(encode)
        }
    }

    /// `bytes` cut at random places into 1-6 chunks.
    static func split(_ bytes: [UInt8], using random: inout SeededRandom) -> [[UInt8]] {
        var cuts = (0..<Int.random(in: 0...5, using: &random)).map { _ in
            Int.random(in: 0...bytes.count, using: &random)
        }
        cuts = ([0] + cuts.sorted() + [bytes.count])
        return zip(cuts, cuts.dropFirst()).map { Array(bytes[$0..<$1]) }
    }

    @Test func valuesRoundTripWhateverTheChunking() {
        var random = SeededRandom(seed: 0x2E5)
        for iteration in 0..<PropertyTesting.iterations {
            let values = (0..<Int.random(in: 1...4, using: &random)).map { _ in Self.randomValue(using: &random) }
            let wire = values.flatMap(Self.encode)
            let result = Self.read(Self.split(wire, using: &random))
            if result != .values(values) {
                Issue.record("iteration \(iteration): \(values) read back as \(result)")
                return
            }
        }
        PropertyTesting.report(
            "RESP: generated replies round-trip through hiredis in any chunking", cases: PropertyTesting.iterations)
    }

    @Test func aTruncatedReplyIsNeverTakenForAWholeOne() {
        var random = SeededRandom(seed: 0x7C7)
        for iteration in 0..<max(1, PropertyTesting.iterations / 5) {
            let value = Self.randomValue(using: &random)
            let wire = Self.encode(value)
            for length in 0..<wire.count {
                let result = Self.read([Array(wire.prefix(length))])
                if result != .values([]) {
                    Issue.record(
                        "iteration \(iteration): a prefix of \(length)/\(wire.count) bytes of \(value) gave \(result)")
                    return
                }
            }
        }
    }

    @Test func aStreamNotStartingWithATypeByteIsRefused() {
        var random = SeededRandom(seed: 0x1B)
        let typeBytes = Set("+-:$*".utf8)
        for _ in 0..<PropertyTesting.iterations {
            var first = UInt8.random(in: 0...255, using: &random)
            while typeBytes.contains(first) { first = UInt8.random(in: 0...255, using: &random) }
            let rest = Self.encode(Self.randomValue(using: &random))
            #expect(Self.read([[first] + rest]) == .protocolError([]))
        }
        PropertyTesting.report("RESP: a stream without a type byte is refused", cases: PropertyTesting.iterations)
    }

    @Test func mutatedStreamsNeverTrap() {
        var random = SeededRandom(seed: 0xF022)
        var refused = 0
        for _ in 0..<PropertyTesting.iterations * 4 {
            let wire = (0..<Int.random(in: 1...3, using: &random)).flatMap { _ in
                Self.encode(Self.randomValue(using: &random))
            }
            let mutated = PropertyTesting.mutate(wire, using: &random)
            // Whatever comes back (values, a need for more bytes, a protocol error) converts
            // without trapping; descriptions walk every value.
            switch Self.read(Self.split(mutated, using: &random)) {
            case .values(let values): _ = values.map(\.description)
            case .protocolError: refused += 1
            }
        }
        #expect(refused > 0)
        PropertyTesting.report("RESP: mutated streams never trap", cases: PropertyTesting.iterations * 4)
    }
}
