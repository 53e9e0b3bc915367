/// One of Redis Cluster's 16,384 hash slots, and the rule that maps a key to it.
///
/// The slot is CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the key modulo 16,384. When
/// the key holds a hash tag, a `{` followed later by a `}` with at least one byte between them,
/// only the bytes between the first `{` and the first `}` after it are hashed, so keys sharing a
/// tag share a slot (and a node), as multi-key commands and scripts need.
public struct HashSlot: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The number of slots in a Redis Cluster.
    public static let count = 16_384

    /// 0 ..< 16,384.
    public let value: Int

    /// The slot numbered `value`; nil outside 0 ..< 16,384.
    public init?(_ value: Int) {
        guard (0..<Self.count).contains(value) else { return nil }
        self.value = value
    }

    /// The slot Redis Cluster stores `key` in.
    public init(key: some Collection<UInt8>) {
        // Callers in other modules reach this unspecialized: one witness call for the key's
        // storage, then the tag search and CRC16 run on a buffer (specialized here), not byte by
        // byte through the Collection witnesses (15 % of a cluster batch write before).
        value =
            key.withContiguousStorageIfAvailable { Self.slot(of: $0) }
            ?? Array(key).withUnsafeBufferPointer { Self.slot(of: $0) }
    }

    /// The slot Redis Cluster stores `key` in.
    public init(key: String) {
        self.init(key: key.utf8)
    }

    public static func < (lhs: HashSlot, rhs: HashSlot) -> Bool { lhs.value < rhs.value }

    public var description: String { "\(value)" }

    /// The bytes that decide the slot: the hash tag's content if the key has a non-empty one,
    /// else the whole key.
    static func hashedPart<Key: Collection<UInt8>>(of key: Key) -> Key.SubSequence {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key[...] }
        let afterOpen = key.index(after: open)
        guard let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen else {
            return key[...]
        }
        return key[afterOpen..<close]
    }

    private static func slot(of key: UnsafeBufferPointer<UInt8>) -> Int {
        Int(crc16(hashedPart(of: key))) & (count - 1)
    }

    /// CRC16/XMODEM, the variant the Redis Cluster specification names.
    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ crc16Table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let crc16Table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
