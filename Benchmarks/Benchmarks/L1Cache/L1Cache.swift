// The L1: an LRU of participants entries keyed by chat id, at the default capacity.
import Actors
import Benchmark
import ChatService
import Foundation

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
    var full = LRUCache<ChatID, ParticipantsEntry>(capacity: capacity)
    for entry in entries.prefix(capacity) { full.set(entry, for: entry.chatID) }
    let warm = full

    Benchmark("LRUCache.get, hit (\(capacity) entries)") { benchmark in
        var cache = warm
        var index = 0
        for _ in benchmark.scaledIterations {
            blackHole(cache.get(ids[index]))
            index = (index &+ 7919) % capacity
        }
    }
    Benchmark("LRUCache.get, miss") { benchmark in
        var cache = warm
        var index = capacity
        for _ in benchmark.scaledIterations {
            blackHole(cache.get(ids[index]))
            index = capacity + (index &+ 7919) % capacity
        }
    }
    Benchmark("LRUCache.set, replace") { benchmark in
        var cache = warm
        var index = 0
        for _ in benchmark.scaledIterations {
            blackHole(cache.set(entries[index], for: ids[index]))
            index = (index &+ 7919) % capacity
        }
    }
    Benchmark("LRUCache.set, evict") { benchmark in
        var cache = warm
        var index = 0
        for _ in benchmark.scaledIterations {
            blackHole(cache.set(entries[index], for: ids[index]))
            index = (index &+ 7919) % (2 * capacity)
        }
    }
}
