import Testing

@testable import Actors

@Suite("LRUCache")
struct LRUCacheTests {
    @Test func evictsTheLeastRecentlyUsed() {
        var cache = LRUCache<String, Int>(capacity: 3)
        #expect(cache.set(1, for: "a") == nil)
        #expect(cache.set(2, for: "b") == nil)
        #expect(cache.set(3, for: "c") == nil)
        #expect(cache.keysFromNewest == ["c", "b", "a"])
        let evicted = cache.set(4, for: "d")
        #expect(evicted?.key == "a")
        #expect(evicted?.value == 1)
        #expect(cache.keysFromNewest == ["d", "c", "b"])
        #expect(cache.count == 3)
        #expect(cache.peek("a") == nil)
    }

    @Test func getMarksAsRecentlyUsedButPeekDoesNot() {
        var cache = LRUCache<String, Int>(capacity: 3)
        cache.set(1, for: "a")
        cache.set(2, for: "b")
        cache.set(3, for: "c")
        #expect(cache.peek("a") == 1)
        #expect(cache.keysFromNewest == ["c", "b", "a"])
        #expect(cache.get("a") == 1)
        #expect(cache.keysFromNewest == ["a", "c", "b"])
        #expect(cache.set(4, for: "d")?.key == "b")
        #expect(cache.get("missing") == nil)
        #expect(cache.keysFromNewest == ["d", "a", "c"])
    }

    @Test func setWithoutEvictingAddsOnlyWhileThereIsRoomAndKeepsTheOrder() {
        var cache = LRUCache<String, Int>(capacity: 3)
        var stored = cache.setWithoutEvicting(1, for: "a")
        #expect(stored)
        stored = cache.setWithoutEvicting(2, for: "b")
        #expect(stored)
        #expect(cache.hasRoom)
        stored = cache.setWithoutEvicting(3, for: "c")
        #expect(stored)
        #expect(!cache.hasRoom)
        #expect(cache.keysFromNewest == ["c", "b", "a"])
        // Full: a new key is turned away and nothing is evicted.
        stored = cache.setWithoutEvicting(4, for: "d")
        #expect(!stored)
        #expect(cache.peek("d") == nil)
        #expect(cache.keysFromNewest == ["c", "b", "a"])
        // A cached key takes the new value where it stands in the recency order.
        stored = cache.setWithoutEvicting(10, for: "a")
        #expect(stored)
        #expect(cache.peek("a") == 10)
        #expect(cache.keysFromNewest == ["c", "b", "a"])
        #expect(cache.set(5, for: "e")?.key == "a")
        var disabled = LRUCache<String, Int>(capacity: 0)
        #expect(!disabled.hasRoom)
        stored = disabled.setWithoutEvicting(1, for: "a")
        #expect(!stored)
        #expect(disabled.isEmpty)
    }

    @Test func updateReplacesTheValueAndMovesToFront() {
        var cache = LRUCache<String, Int>(capacity: 2)
        cache.set(1, for: "a")
        cache.set(2, for: "b")
        #expect(cache.set(10, for: "a") == nil)
        #expect(cache.count == 2)
        #expect(cache.keysFromNewest == ["a", "b"])
        #expect(cache.peek("a") == 10)
        #expect(cache.set(3, for: "c")?.key == "b")
    }

    @Test func capacityZeroStoresNothing() {
        var cache = LRUCache<String, Int>(capacity: 0)
        let rejected = cache.set(1, for: "a")
        #expect(rejected?.key == "a")
        #expect(rejected?.value == 1)
        #expect(cache.count == 0)
        #expect(cache.isEmpty)
        #expect(cache.get("a") == nil)
        #expect(cache.remove("a") == nil)
    }

    @Test func capacityOneKeepsTheLatest() {
        var cache = LRUCache<Int, String>(capacity: 1)
        cache.set("one", for: 1)
        #expect(cache.set("uno", for: 1) == nil)
        #expect(cache.set("two", for: 2)?.value == "uno")
        #expect(cache.keysFromNewest == [2])
        #expect(cache.get(2) == "two")
        #expect(cache.remove(2) == "two")
        #expect(cache.isEmpty)
        #expect(cache.keysFromNewest.isEmpty)
        cache.set("three", for: 3)
        #expect(cache.get(3) == "three")
    }

    @Test func removeFromEveryPositionKeepsTheOrder() {
        for victim in 0..<5 {
            var cache = LRUCache<Int, Int>(capacity: 5)
            for key in 0..<5 {
                cache.set(key * 10, for: key)
            }
            #expect(cache.remove(victim) == victim * 10)
            #expect(cache.remove(victim) == nil)
            #expect(cache.keysFromNewest == [4, 3, 2, 1, 0].filter { $0 != victim })
            #expect(!cache.contains(victim))
            // The freed room is used before anything is evicted.
            #expect(cache.set(99, for: 99) == nil)
            #expect(cache.set(100, for: 100)?.key == (victim == 0 ? 1 : 0))
        }
    }

    @Test func removeAllWhereKeepsTheRestInOrder() {
        var cache = LRUCache<Int, Int>(capacity: 10)
        for key in 0..<10 {
            cache.set(key, for: key)
        }
        cache.removeAll { key, _ in key % 3 == 0 }
        #expect(cache.keysFromNewest == [8, 7, 5, 4, 2, 1])
        cache.removeAll { _, value in value > 100 }
        #expect(cache.count == 6)
        cache.removeAll()
        #expect(cache.isEmpty)
        #expect(cache.set(1, for: 1) == nil)
        #expect(cache.keysFromNewest == [1])
    }

    @Test func removeAllWhereThatThrowsChangesNothing() {
        struct Stop: Error {}
        var cache = LRUCache<Int, Int>(capacity: 4)
        for key in 0..<4 {
            cache.set(key, for: key)
        }
        #expect(throws: Stop.self) {
            try cache.removeAll { key, _ in
                if key == 2 { throw Stop() }
                return true
            }
        }
        #expect(cache.keysFromNewest == [3, 2, 1, 0])
    }

    /// The obvious O(n) model: an array ordered from most to least recently used.
    struct ReferenceLRU {
        let capacity: Int
        var entries: [(key: Int, value: Int)] = []

        mutating func get(_ key: Int) -> Int? {
            guard let index = entries.firstIndex(where: { $0.key == key }) else { return nil }
            let entry = entries.remove(at: index)
            entries.insert(entry, at: 0)
            return entry.value
        }

        func peek(_ key: Int) -> Int? {
            entries.first { $0.key == key }?.value
        }

        mutating func set(_ value: Int, for key: Int) -> (key: Int, value: Int)? {
            if let index = entries.firstIndex(where: { $0.key == key }) {
                entries.remove(at: index)
                entries.insert((key, value), at: 0)
                return nil
            }
            guard capacity > 0 else { return (key, value) }
            entries.insert((key, value), at: 0)
            return entries.count > capacity ? entries.removeLast() : nil
        }

        mutating func remove(_ key: Int) -> Int? {
            guard let index = entries.firstIndex(where: { $0.key == key }) else { return nil }
            return entries.remove(at: index).value
        }
    }

    @Test(arguments: [0, 1, 2, 7, 64])
    func randomOperationsMatchTheReferenceModel(_ capacity: Int) {
        var random = SeededRandom(seed: UInt64(capacity) &+ 1)
        var cache = LRUCache<Int, Int>(capacity: capacity)
        var model = ReferenceLRU(capacity: capacity)
        let keySpace = max(capacity * 2, 4)
        for step in 0..<10_000 {
            let key = Int.random(in: 0..<keySpace, using: &random)
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<35:
                #expect(cache.get(key) == model.get(key), "step \(step)")
            case 35..<45:
                #expect(cache.peek(key) == model.peek(key), "step \(step)")
            case 45..<85:
                let evicted = cache.set(step, for: key)
                let expected = model.set(step, for: key)
                #expect(evicted?.key == expected?.key && evicted?.value == expected?.value, "step \(step)")
            case 85..<98:
                #expect(cache.remove(key) == model.remove(key), "step \(step)")
            default:
                let modulus = Int.random(in: 2...5, using: &random)
                cache.removeAll { key, _ in key % modulus == 0 }
                model.entries.removeAll { $0.key % modulus == 0 }
            }
            #expect(cache.count == model.entries.count, "step \(step)")
            if step % 97 == 0 {
                #expect(cache.keysFromNewest == model.entries.map(\.key), "step \(step)")
            }
        }
        #expect(cache.keysFromNewest == model.entries.map(\.key))
    }
}
