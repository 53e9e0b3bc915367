import Actors
import ChatRuntime
import Testing

@Suite("Byte equality")
struct ByteEqualityTests {
    @Test func agreesWithArrayEquality() {
        var random = SeededRandom(seed: 11)
        for _ in 0..<2_000 {
            let count = Int.random(in: 0...64, using: &random)
            let left = (0..<count).map { _ in UInt8.random(in: 0...3, using: &random) }
            var right = left
            switch Int.random(in: 0..<4, using: &random) {
            case 0 where !right.isEmpty: right[Int.random(in: 0..<right.count, using: &random)] ^= 0x80
            case 1: right.append(UInt8.random(in: 0...3, using: &random))
            case 2 where !right.isEmpty: right.removeLast()
            default: break
            }
            #expect(left.hasSameBytes(as: right) == (left == right))
            #expect(right.hasSameBytes(as: left) == (left == right))
        }
        #expect([UInt8]().hasSameBytes(as: []))
        #expect(![UInt8]().hasSameBytes(as: [0]))
    }
}
