/// A count-bounded cache that evicts the least recently used entry.
///
/// Every operation except ``removeAll(where:)`` is O(1). The recency list is doubly linked
/// through array indices rather than node objects, so the cache is one value with two
/// allocations (the node array and the key index), no reference counting per entry and no
/// retain cycles. Removal moves the last node into the freed slot, keeping the array dense;
/// nothing of a removed entry is retained.
///
/// A capacity of 0 disables the cache: nothing is stored.
public struct LRUCache<Key: Hashable, Value> {
    /// The most entries kept at once.
    public let capacity: Int

    fileprivate struct Node {
        var key: Key
        var value: Value
        /// Index of the next more recently used node, or `none`.
        var newer: Int
        /// Index of the next less recently used node, or `none`.
        var older: Int
    }

    private static var none: Int { -1 }

    private var nodes: [Node] = []
    private var slotOfKey: [Key: Int] = [:]
    private var newest = LRUCache.none
    private var oldest = LRUCache.none

    /// An empty cache holding at most `capacity` entries; `capacity` must not be negative.
    public init(capacity: Int) {
        precondition(capacity >= 0, "LRUCache capacity must not be negative, got \(capacity)")
        self.capacity = capacity
    }

    /// The number of entries.
    public var count: Int { nodes.count }

    /// Whether the cache holds nothing.
    public var isEmpty: Bool { nodes.isEmpty }

    /// The value for `key`, marking it as the most recently used.
    public mutating func get(_ key: Key) -> Value? {
        guard let slot = slotOfKey[key] else { return nil }
        moveToNewest(slot)
        return nodes[slot].value
    }

    /// The value for `key`, leaving the recency order alone.
    public func peek(_ key: Key) -> Value? {
        guard let slot = slotOfKey[key] else { return nil }
        return nodes[slot].value
    }

    /// Whether `key` is cached; does not change the recency order.
    public func contains(_ key: Key) -> Bool {
        slotOfKey[key] != nil
    }

    /// Stores `value` for `key` as the most recently used entry.
    ///
    /// - Returns: the entry evicted to make room, if any. With capacity 0 that is the entry just
    ///   offered, since nothing can be stored. Replacing the value of a cached key evicts nothing.
    @discardableResult
    public mutating func set(_ value: Value, for key: Key) -> (key: Key, value: Value)? {
        if let slot = slotOfKey[key] {
            nodes[slot].value = value
            moveToNewest(slot)
            return nil
        }
        guard capacity > 0 else { return (key, value) }
        if nodes.count < capacity {
            nodes.append(Node(key: key, value: value, newer: Self.none, older: Self.none))
            slotOfKey[key] = nodes.count - 1
            linkAsNewest(nodes.count - 1)
            return nil
        }
        // Full: the least recently used node's slot is reused in place.
        let slot = oldest
        let evicted = (key: nodes[slot].key, value: nodes[slot].value)
        slotOfKey.removeValue(forKey: evicted.key)
        nodes[slot].key = key
        nodes[slot].value = value
        slotOfKey[key] = slot
        moveToNewest(slot)
        return evicted
    }

    /// Stores `value` for `key` without evicting anything: a cached key takes the new value and
    /// keeps its place in the recency order; a new key is added, as the most recently used, only
    /// while there is room.
    ///
    /// - Returns: whether `value` was stored.
    @discardableResult
    public mutating func setWithoutEvicting(_ value: Value, for key: Key) -> Bool {
        if let slot = slotOfKey[key] {
            nodes[slot].value = value
            return true
        }
        guard nodes.count < capacity else { return false }
        set(value, for: key)
        return true
    }

    /// Whether a new key would be stored without evicting another.
    public var hasRoom: Bool { nodes.count < capacity }

    /// Removes the entry for `key`.
    ///
    /// - Returns: its value, or `nil` if it was not cached.
    @discardableResult
    public mutating func remove(_ key: Key) -> Value? {
        guard let slot = slotOfKey.removeValue(forKey: key) else { return nil }
        unlink(slot)
        let lastSlot = nodes.count - 1
        if slot != lastSlot {
            nodes.swapAt(slot, lastSlot)
            relinkMovedNode(at: slot)
        }
        return nodes.removeLast().value
    }

    /// Removes every entry for which `shouldRemove` is true, in O(count).
    ///
    /// If `shouldRemove` throws, the cache is left unchanged.
    public mutating func removeAll(where shouldRemove: (Key, Value) throws -> Bool) rethrows {
        var doomed: [Key] = []
        for node in nodes where try shouldRemove(node.key, node.value) {
            doomed.append(node.key)
        }
        for key in doomed {
            remove(key)
        }
    }

    /// Removes every entry.
    public mutating func removeAll() {
        nodes.removeAll()
        slotOfKey.removeAll()
        newest = Self.none
        oldest = Self.none
    }

    /// The keys from the most to the least recently used, in O(count); for diagnostics and tests.
    public var keysFromNewest: [Key] {
        var keys: [Key] = []
        keys.reserveCapacity(nodes.count)
        var slot = newest
        while slot != Self.none {
            keys.append(nodes[slot].key)
            slot = nodes[slot].older
        }
        return keys
    }

    private mutating func moveToNewest(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        linkAsNewest(slot)
    }

    private mutating func linkAsNewest(_ slot: Int) {
        nodes[slot].newer = Self.none
        nodes[slot].older = newest
        if newest != Self.none {
            nodes[newest].newer = slot
        } else {
            oldest = slot
        }
        newest = slot
    }

    /// Takes the node out of the recency list; its own links are left stale.
    private mutating func unlink(_ slot: Int) {
        let newer = nodes[slot].newer
        let older = nodes[slot].older
        if newer != Self.none {
            nodes[newer].older = older
        } else {
            newest = older
        }
        if older != Self.none {
            nodes[older].newer = newer
        } else {
            oldest = newer
        }
    }

    /// Points the neighbours and the key index at a node that was just moved into `newSlot`.
    private mutating func relinkMovedNode(at newSlot: Int) {
        let newer = nodes[newSlot].newer
        let older = nodes[newSlot].older
        if newer != Self.none {
            nodes[newer].older = newSlot
        } else {
            newest = newSlot
        }
        if older != Self.none {
            nodes[older].newer = newSlot
        } else {
            oldest = newSlot
        }
        slotOfKey[nodes[newSlot].key] = newSlot
    }
}

extension LRUCache: Sendable where Key: Sendable, Value: Sendable {}
extension LRUCache.Node: Sendable where Key: Sendable, Value: Sendable {}
