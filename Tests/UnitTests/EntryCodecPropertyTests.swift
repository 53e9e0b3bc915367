import Foundation
import Testing

@testable import Actors

/// Properties of the Redis entry codec over generated and mutated documents: what is written
/// reads back equal, no proper prefix is accepted, and whatever mutated bytes it accepts is
/// JSON by the grammar too (it never accepts invalid input), without ever trapping.
@Suite("EntryCodec properties")
struct EntryCodecPropertyTests {
    static func randomEntry(using random: inout SeededRandom) -> ParticipantsEntry {
        let alphabet = Array("ABCXYZabcxyz0189_.:-")
        let idLength = Int.random(in: 1...ChatID.maximumLength, using: &random)
        let id = String((0..<idLength).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &random)] })
        let participants = (0..<Int.random(in: 0...6, using: &random)).map { _ in
            Participant(
                userID: PropertyTesting.text(maxLength: 12, using: &random),
                displayName: PropertyTesting.text(maxLength: 30, using: &random),
                avatarURL: Bool.random(using: &random) ? nil : PropertyTesting.text(maxLength: 40, using: &random),
                role: PropertyTesting.text(maxLength: 8, using: &random))
        }
        // Millisecond precision: what the Redis form keeps.
        let milliseconds = Int64.random(in: 0...4_102_444_800_000, using: &random)
        return ParticipantsEntry(
            chatID: ChatID(validating: id)!, participants: participants,
            version: Int64.random(in: Int64.min...Int64.max, using: &random),
            fetchedAt: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    @Test func theOracleKnowsJSON() {
        for valid in [#"{}"#, #"[]"#, #"0"#, #"-0.5e+3"#, #" {"a":[1,true,null,"\u00e9\n"]} "#, #""😀""#, "1e999"] {
            #expect(PropertyTesting.isJSON(Array(valid.utf8)), "\(valid)")
        }
        for invalid in [
            #""#, #"{"#, #"{"a"}"#, #"[1,]"#, #"01"#, #"1."#, #""\u12""#, #""\x""#, "\"\u{1}\"", #"{} {}"#, #"tru"#,
            #"NaN"#,
        ] {
            #expect(!PropertyTesting.isJSON(Array(invalid.utf8)), "\(invalid)")
        }
        #expect(!PropertyTesting.isJSON([0x22, 0xF5, 0x22]))
    }

    @Test func whatIsWrittenReadsBackEqualAndIsJSON() throws {
        var random = SeededRandom(seed: 0xE17)
        for iteration in 0..<PropertyTesting.iterations {
            let entry = Self.randomEntry(using: &random)
            let bytes = EntryCodec.encodeForRedis(entry)
            let decoded = try EntryCodec.decodeFromRedis(bytes)
            #expect(
                decoded.chatID == entry.chatID && decoded.participants == entry.participants
                    && decoded.version == entry.version)
            #expect(abs(decoded.fetchedAt.timeIntervalSince(entry.fetchedAt)) < 0.001, "iteration \(iteration)")
            #expect(
                PropertyTesting.isJSON(bytes),
                "iteration \(iteration): not JSON: \(String(decoding: bytes, as: UTF8.self))")
            if decoded.participants != entry.participants { return }
        }
        PropertyTesting.report(
            "Redis entry codec: generated entries round-trip and are JSON", cases: PropertyTesting.iterations)
    }

    @Test func noProperPrefixIsAccepted() {
        var random = SeededRandom(seed: 0x9EF)
        for _ in 0..<max(1, PropertyTesting.iterations / 10) {
            let bytes = EntryCodec.encodeForRedis(Self.randomEntry(using: &random))
            let lengths = (0..<40).map { _ in Int.random(in: 0..<bytes.count, using: &random) } + [0, bytes.count - 1]
            for length in lengths {
                if (try? EntryCodec.decodeFromRedis(Array(bytes.prefix(length)))) != nil {
                    Issue.record(
                        "accepted a prefix of \(length)/\(bytes.count) bytes: \(String(decoding: bytes.prefix(length), as: UTF8.self))"
                    )
                    return
                }
            }
        }
    }

    @Test func mutatedDocumentsAreRefusedOrValidJSON() {
        var random = SeededRandom(seed: 0x3A7)
        var accepted = 0
        for iteration in 0..<PropertyTesting.iterations * 4 {
            let original = EntryCodec.encodeForRedis(Self.randomEntry(using: &random))
            let mutated = PropertyTesting.mutate(original, using: &random)
            guard let entry = try? EntryCodec.decodeFromRedis(mutated) else { continue }
            accepted += 1
            // Never accepts what is not JSON, and what it returns is a valid entry.
            if !PropertyTesting.isJSON(mutated) {
                Issue.record(
                    "iteration \(iteration): accepted bytes that are not JSON: \(String(decoding: mutated, as: UTF8.self).debugDescription)"
                )
                return
            }
            #expect(ChatID(validating: entry.chatID.rawValue) != nil)
        }
        // Some mutations (inside a string) keep the document valid: the property was exercised.
        #expect(accepted > 0)
        PropertyTesting.report(
            "Redis entry codec: mutated entries refused or valid JSON", cases: PropertyTesting.iterations * 4)
    }

    @Test func randomBytesNeverTrapAndAreAcceptedOnlyWhenJSON() {
        var random = SeededRandom(seed: 0xB17E5)
        for _ in 0..<PropertyTesting.iterations {
            let bytes = (0..<Int.random(in: 0...64, using: &random)).map { _ in
                PropertyTesting.interestingByte(using: &random)
            }
            if (try? EntryCodec.decodeFromRedis(bytes)) != nil {
                #expect(PropertyTesting.isJSON(bytes))
            }
        }
        PropertyTesting.report("Redis entry codec: random bytes never trap", cases: PropertyTesting.iterations)
    }
}
