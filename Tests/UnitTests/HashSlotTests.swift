import Testing

@testable import ChatRuntime

@Suite("HashSlot")
struct HashSlotTests {
    /// The check value of CRC16/XMODEM, which the Redis Cluster specification quotes.
    @Test func crc16MatchesTheSpecificationsCheckValue() {
        #expect(HashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(HashSlot.crc16([]) == 0)
    }

    /// Slots `CLUSTER KEYSLOT` gives for these keys (the integration suite compares many more
    /// against a real cluster).
    @Test(arguments: [
        ("foo", 12182), ("bar", 5061), ("hello", 866), ("", 0),
        ("participants:v1:{chat-1}", HashSlot(key: "chat-1").value),
    ])
    func knownKeys(key: String, slot: Int) {
        #expect(HashSlot(key: key).value == slot)
    }

    @Test(arguments: [
        // The first `{` and the first `}` after it, with something between: only that part counts.
        ("{user1000}.following", "user1000"),
        ("{user1000}.followers", "user1000"),
        ("foo{bar}{zap}", "bar"),
        ("foo{{bar}}zap", "{bar"),
        ("a{b}", "b"),
        // An empty tag or no closing brace: the whole key counts.
        ("foo{}{bar}", "foo{}{bar}"),
        ("foo{bar", "foo{bar"),
        ("}foo{", "}foo{"),
    ])
    func hashTags(key: String, hashed: String) {
        #expect(String(decoding: HashSlot.hashedPart(of: Array(key.utf8)), as: UTF8.self) == hashed)
        #expect(HashSlot(key: key) == HashSlot(key: hashed))
    }

    @Test func bytesAndTextAgree() {
        for key in ["chat-42", "ü{ß}", "participants:v1:{c}:meta"] {
            #expect(HashSlot(key: key) == HashSlot(key: Array(key.utf8)))
        }
    }

    @Test func slotNumbersAreBounded() {
        #expect(HashSlot(0) != nil)
        #expect(HashSlot(16_383) != nil)
        #expect(HashSlot(16_384) == nil)
        #expect(HashSlot(-1) == nil)
    }
}
