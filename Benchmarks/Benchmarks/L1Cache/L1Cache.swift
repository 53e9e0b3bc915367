// The L1: an LRU of participants entries keyed by chat id, at the default capacity.
import Actors
import Benchmark
import Foundation
import StubUpstream

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2))

    let capacity = 10_000
    let dataset = StubDataset(chatCount: 2 * capacity, participantsPerChat: 20)
    let fetchedAt = Date(timeIntervalSince1970: 1_760_000_000)
    let entries = (1...2 * capacity).map { ParticipantsEntry(dataset.chat($0), fetchedAt: fetchedAt) }
    let ids = entries.map(\.chatID)
    // One cache per benchmark, mutated in place: a `var` copy of a shared cache would pay a
    // copy-on-write of all its nodes on every sample.
    func warmCache() -> CacheBox {
        let box = CacheBox(capacity: capacity)
        for entry in entries.prefix(capacity) { box.cache.set(entry, for: entry.chatID) }
        return box
    }

    let hits = warmCache()
    Benchmark("LRUCache.get, hit (\(capacity) entries)") { benchmark in
        var index = 0
        for _ in benchmark.scaledIterations {
            blackHole(hits.cache.get(ids[index]))
            index = (index &+ 7919) % capacity
        }
    }
    let misses = warmCache()
    Benchmark("LRUCache.get, miss") { benchmark in
        var index = capacity
        for _ in benchmark.scaledIterations {
            blackHole(misses.cache.get(ids[index]))
            index = capacity + (index &+ 7919) % capacity
        }
    }
    let replacements = warmCache()
    Benchmark("LRUCache.set, replace") { benchmark in
        var index = 0
        for _ in benchmark.scaledIterations {
            blackHole(replacements.cache.set(entries[index], for: ids[index]))
            index = (index &+ 7919) % capacity
        }
    }
    let evictions = warmCache()
    Benchmark("LRUCache.set, evict") { benchmark in
        var index = 0
        for _ in benchmark.scaledIterations {
            blackHole(evictions.cache.set(entries[index], for: ids[index]))
            index = (index &+ 7919) % (2 * capacity)
        }
    }
}

/// Holds a cache that the benchmark closures mutate in place.
final class CacheBox: @unchecked Sendable {
    // @unchecked Sendable: package-benchmark runs one benchmark at a time, on one task; each
    // box belongs to a single benchmark.
    var cache: LRUCache<ChatID, ParticipantsEntry>
    init(capacity: Int) { cache = LRUCache(capacity: capacity) }
}
