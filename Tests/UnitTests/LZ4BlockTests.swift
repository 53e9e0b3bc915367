import Actors
import ChatRuntime
import Foundation
import Testing

/// Runtime's LZ4 block: what goes in comes out, and what is not a block of the stated length
/// is an error, never a crash or a read outside the buffers.
@Suite("LZ4 block")
struct LZ4BlockTests {
    static func randomBytes(_ count: Int, alphabet: Int, _ random: inout SeededRandom) -> [UInt8] {
        (0..<count).map { _ in UInt8(Int.random(in: 0..<alphabet, using: &random)) }
    }

    static let json = Array(
        String(
            repeating: #"{"user_id":"u-1","display_name":"User 1","avatar_url":"https://avatars.invalid/u-1.png"},"#,
            count: 30
        ).utf8)

    @Test func roundTripsEverySize() throws {
        var random = SeededRandom(seed: 5)
        var inputs: [[UInt8]] = [[], [42], Self.json, Array(repeating: 0, count: 70_000)]
        for count in [2, 15, 16, 17, 255, 1000, 2736, 65_536, 100_000] {
            // Incompressible (every byte value) and compressible (a few values).
            inputs.append(Self.randomBytes(count, alphabet: 256, &random))
            inputs.append(Self.randomBytes(count, alphabet: 4, &random))
        }
        for input in inputs {
            let block = LZ4Block(compressing: input)
            #expect(block.count == input.count)
            #expect(try block.decompressed() == input)
            // Kept in an array of its own size (give or take malloc's rounding), not of LZ4's
            // worst case.
            #expect(block.compressed.capacity < block.compressed.count + 64)
        }
    }

    @Test func compressesJSONAndKeepsItsPartsAsTheyAre() throws {
        let block = LZ4Block(compressing: Self.json)
        #expect(block.compressed.count * 4 < Self.json.count)
        let rebuilt = LZ4Block(compressed: block.compressed, count: block.count)
        #expect(rebuilt == block)
        #expect(try rebuilt.decompressed() == Self.json)
    }

    @Test func decompressesStraightIntoAWriter() throws {
        let block = LZ4Block(compressing: Self.json)
        let bytes = ByteArrayWriter.makeArray(capacity: 1 + block.count + 1) { writer in
            writer.append(UInt8(ascii: "<"))
            #expect(throws: Never.self) { try writer.append(decompressing: block) }
            writer.removeLast()
            writer.append(UInt8(ascii: ">"))
            writer.append(UInt8(ascii: "!"))
        }
        #expect(bytes == [UInt8(ascii: "<")] + Self.json.dropLast() + Array(">!".utf8))
    }

    @Test func aBlockOfAnotherLengthIsAnError() {
        let block = LZ4Block(compressing: Self.json)
        for count in [0, 1, block.count - 1, block.count + 1, block.count * 2] {
            #expect(throws: LZ4Error(expected: count)) {
                try LZ4Block(compressed: block.compressed, count: count).decompressed()
            }
        }
        #expect(throws: LZ4Error(expected: 5)) { try LZ4Block(compressed: [], count: 5).decompressed() }
        #expect(throws: LZ4Error(expected: 0)) { try LZ4Block(compressed: [0x10, 0x41], count: 0).decompressed() }
    }

    @Test func truncatedOrGarbageBlocksAreErrorsNotCrashes() {
        let block = LZ4Block(compressing: Self.json)
        for cut in [1, 2, block.compressed.count / 2, block.compressed.count - 1] {
            #expect(throws: LZ4Error.self) {
                try LZ4Block(compressed: Array(block.compressed.prefix(cut)), count: block.count).decompressed()
            }
        }
        // A match offset pointing before the start of the output.
        #expect(throws: LZ4Error.self) {
            try LZ4Block(compressed: [0x1F, 0x41, 0xFF, 0xFF, 0x00], count: 40).decompressed()
        }
        #expect(throws: LZ4Error.self) {
            try LZ4Block(compressed: Array(repeating: 0xFF, count: 64), count: 1000).decompressed()
        }
    }

    @Test func mutatedBlocksNeverReadOrWriteOutOfBounds() {
        // LZ4 blocks carry no checksum: a flipped byte may still decode to bytes of the right
        // length. Whatever the mutation, the answer is an error or exactly `count` bytes.
        var random = SeededRandom(seed: 9)
        let block = LZ4Block(compressing: Self.json)
        var errors = 0
        for _ in 0..<2000 {
            var bytes = block.compressed
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            do {
                #expect(try LZ4Block(compressed: bytes, count: block.count).decompressed().count == block.count)
            } catch {
                errors += 1
            }
        }
        #expect(errors > 0)
    }

    @Test func aFailedDecompressionWritesNothing() {
        let valid = LZ4Block(compressing: Self.json)
        let corrupt = LZ4Block(compressed: Array(valid.compressed.prefix(3)), count: valid.count)
        let bytes = ByteArrayWriter.makeArray(capacity: valid.count + 1) { writer in
            writer.append(UInt8(ascii: "a"))
            #expect(throws: LZ4Error.self) { try writer.append(decompressing: corrupt) }
            #expect(writer.count == 1)
        }
        #expect(bytes == [UInt8(ascii: "a")])
    }
}
