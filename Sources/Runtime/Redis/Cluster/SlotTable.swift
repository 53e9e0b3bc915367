/// For each of the 16,384 hash slots, the primary that serves it: the lookup a cluster client
/// makes for every command.
///
/// Built from a ``ClusterTopology``. A slot no shard claims has no primary; the cluster is only
/// fully served when ``uncoveredSlots`` is empty. Updated in place by a `MOVED` redirect, which
/// is authoritative for its slot until the next topology refresh.
public struct SlotTable: Sendable, Hashable, CustomStringConvertible {
    /// The primaries, each once, in the order of first appearance in the topology.
    public private(set) var primaries: [RedisServerAddress]
    /// Per slot, the index in ``primaries`` of its primary; -1 when none serves it.
    private var owner: [Int16]

    /// An empty table: no slot is served.
    public init() {
        primaries = []
        owner = Array(repeating: -1, count: HashSlot.count)
    }

    /// The table `topology` describes. When two shards claim a slot (a topology read mid-
    /// migration), the later one wins; the next `MOVED` corrects it.
    public init(_ topology: ClusterTopology) {
        self.init()
        for shard in topology.shards {
            let index = indexOf(shard.primary.address)
            for range in shard.slots {
                for slot in range { owner[slot] = Int16(index) }
            }
        }
    }

    /// The primary that serves `slot`, if any.
    public func primary(for slot: HashSlot) -> RedisServerAddress? {
        let index = owner[slot.value]
        return index < 0 ? nil : primaries[Int(index)]
    }

    /// The primary that serves `key`'s slot, if any.
    public func primary(forKey key: some Collection<UInt8>) -> RedisServerAddress? {
        primary(for: HashSlot(key: key))
    }

    /// Records a `MOVED` redirect: `slot` is now served by `address`.
    public mutating func move(_ slot: HashSlot, to address: RedisServerAddress) {
        owner[slot.value] = Int16(indexOf(address))
    }

    /// The primaries that serve at least one slot, in the order of ``primaries`` (a `MOVED` can
    /// take a primary's last slot away).
    public var servingPrimaries: [RedisServerAddress] {
        var serving = Array(repeating: false, count: primaries.count)
        for index in owner where index >= 0 { serving[Int(index)] = true }
        return primaries.indices.filter { serving[$0] }.map { primaries[$0] }
    }

    /// The number of slots no primary serves.
    public var uncoveredSlots: Int {
        owner.reduce(0) { $1 < 0 ? $0 + 1 : $0 }
    }

    /// The slots `address` serves, as sorted ranges.
    public func slots(of address: RedisServerAddress) -> [ClosedRange<Int>] {
        guard let wanted = primaries.firstIndex(of: address) else { return [] }
        var ranges: [ClosedRange<Int>] = []
        var start: Int?
        for slot in 0...HashSlot.count {
            let served = slot < HashSlot.count && owner[slot] == Int16(wanted)
            if served, start == nil { start = slot }
            if !served, let first = start {
                ranges.append(first...(slot - 1))
                start = nil
            }
        }
        return ranges
    }

    /// Two tables are equal when every slot has the same primary (or none), whatever order
    /// their primaries were met in.
    public static func == (lhs: SlotTable, rhs: SlotTable) -> Bool {
        lhs.assignment == rhs.assignment
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(assignment)
    }

    /// `host:port 0-5460, host:port 5461-10922 ...`: each primary with its slot ranges.
    public var description: String {
        let primaries = assignment.sorted { ($0.value.first?.lowerBound ?? 0) < ($1.value.first?.lowerBound ?? 0) }
        let served = primaries.map { address, ranges in
            "\(address) "
                + ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(
                    separator: ",")
        }
        return (served + (uncoveredSlots > 0 ? ["\(uncoveredSlots) slots unserved"] : [])).joined(separator: "; ")
    }

    /// Each primary that serves at least one slot, with its ranges.
    private var assignment: [RedisServerAddress: [ClosedRange<Int>]] {
        var result: [RedisServerAddress: [ClosedRange<Int>]] = [:]
        for address in primaries {
            let ranges = slots(of: address)
            if !ranges.isEmpty { result[address] = ranges }
        }
        return result
    }

    private mutating func indexOf(_ address: RedisServerAddress) -> Int {
        if let index = primaries.firstIndex(of: address) { return index }
        primaries.append(address)
        return primaries.count - 1
    }
}
