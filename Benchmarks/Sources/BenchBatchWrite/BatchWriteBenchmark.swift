import Actors
import ChatRuntime
import Foundation
import Logging
import StubUpstream

/// What one run measured.
struct BatchWriteResult: Sendable {
    var entries: Int
    var seconds: Double
    var deferredBatches: Int
    var entryBytes: Int
    /// In cluster mode, the primaries written to; nil for one Redis.
    var primaries: Int?
    var options: BatchWriteOptions

    var entriesPerSecond: Double { Double(entries) / seconds }

    var json: String {
        """
        {"entries_per_second":\(Int(entriesPerSecond.rounded())),"entries":\(entries),"seconds":\(seconds),\
        "deferred_batches":\(deferredBatches),"entry_bytes":\(entryBytes),"batch_size":\(options.batchSize),\
        "in_flight":\(options.inFlight),"participants":\(options.participants),\
        "cluster_primaries":\(primaries.map(String.init) ?? "null")}
        """
    }
}

struct BatchWriteError: Error, CustomStringConvertible {
    var description: String
}

/// Starts a supervisor and a cache on one loop, waits for Redis, then keeps `inFlight` writers
/// storing batches for the warm-up and the measured period.
struct BatchWriteBenchmark {
    let options: BatchWriteOptions

    func run() async throws -> BatchWriteResult {
        let loop = EventLoop(name: "bench-loop")
        defer { loop.stop() }
        var logger = Logger(label: "bench-batch-write")
        logger.logLevel = .warning
        let policy = SupervisorStateMachine.Policy(
            maxRetries: 1, backoff: Backoff(initial: .milliseconds(100), maximum: .seconds(1)),
            probeInterval: .seconds(1))
        let connectionOptions = RedisConnectionOptions(connectTimeout: .seconds(2), commandTimeout: .seconds(10))
        // Cluster mode as the service wires it (BuildServices): the RedisCluster runs as a
        // service of its own, the supervisor in front of it routes each batch's SETs to their
        // primaries, one pipeline per primary.
        let cluster =
            options.clusterSeeds.isEmpty
            ? nil
            : RedisCluster(
                seeds: options.clusterSeeds, credentials: RedisEndpoint(host: options.host, port: options.port),
                loop: loop, policy: ClusterStateMachine.Policy(retry: policy, refreshInterval: .seconds(30)),
                connectionOptions: connectionOptions, logger: logger)
        let supervisor =
            cluster.map {
                RedisSupervisor(cluster: $0, loop: loop, connectionOptions: connectionOptions, logger: logger)
            }
            ?? RedisSupervisor(
                endpoint: RedisEndpoint(host: options.host, port: options.port), loop: loop, policy: policy,
                connectionOptions: connectionOptions, logger: logger)
        let cache = ParticipantsCache(
            supervisor: supervisor, loop: loop,
            settings: CacheSettings(
                ttl: .seconds(3600), staleThreshold: .seconds(3600), keep: .seconds(86_400),
                notFoundTTL: .seconds(60), l1Capacity: options.l1Capacity),
            logger: logger)
        let supervising = Task { try await supervisor.run() }
        defer { supervising.cancel() }
        let clustering = cluster.map { cluster in Task { try await cluster.run() } }
        defer { clustering?.cancel() }
        try await waitUntilReady(supervisor)
        let primaries = await supervisor.clusterNodes?.count

        let batches = makeBatches()
        let entryBytes =
            batches.flatMap { $0 }.reduce(0) { $0 + EntryCodec.encodeForRedis($1).count } / max(1, options.chats)
        if options.warmupSeconds > 0 {
            _ = await write(batches, to: cache, on: loop, for: options.warmupSeconds)
        }
        let (entries, deferred, seconds) = await write(batches, to: cache, on: loop, for: options.seconds)
        return BatchWriteResult(
            entries: entries, seconds: seconds, deferredBatches: deferred, entryBytes: entryBytes,
            primaries: primaries, options: options)
    }

    private func waitUntilReady(_ supervisor: RedisSupervisor) async throws {
        let changes = await supervisor.stateChanges()
        let timeout = Task {
            try await Task.sleep(for: .seconds(10))
            let target =
                options.clusterSeeds.isEmpty
                ? "Redis at \(options.host):\(options.port)"
                : "the Redis Cluster at \(options.clusterSeeds.map(\.description).joined(separator: ","))"
            throw BatchWriteError(description: "\(target) did not become ready within 10 s")
        }
        defer { timeout.cancel() }
        for await change in changes where change.to == .ready { return }
        throw BatchWriteError(description: "the supervisor stopped before Redis was ready")
    }

    /// Chats 1...chats of the stub's dataset, cut into batches; fetched now so they are fresh.
    private func makeBatches() -> [[ParticipantsEntry]] {
        let dataset = StubDataset(chatCount: options.chats, participantsPerChat: options.participants)
        let now = Date()
        let entries = (1...options.chats).map { ParticipantsEntry(dataset.chat($0), fetchedAt: now) }
        return stride(from: 0, to: entries.count, by: options.batchSize).map {
            Array(entries[$0..<min($0 + options.batchSize, entries.count)])
        }
    }

    /// `inFlight` writers on the loop, each storing the next batch as soon as its last is
    /// written, until `seconds` have passed. Returns entries written, batches deferred and the
    /// time taken until the last writer finished.
    private func write(
        _ batches: [[ParticipantsEntry]], to cache: ParticipantsCache, on loop: EventLoop, for seconds: Double
    ) async -> (entries: Int, deferred: Int, seconds: Double) {
        let clock = ContinuousClock()
        let started = clock.now
        let deadline = started + .milliseconds(Int(seconds * 1000))
        let totals = await withTaskGroup(of: (Int, Int).self) { group in
            for writer in 0..<options.inFlight {
                group.addTask(executorPreference: loop) { [inFlight = options.inFlight] in
                    var entries = 0
                    var deferred = 0
                    // Writer w takes batches w, w + inFlight, ...: every batch in turn, none twice at once.
                    var index = writer % batches.count
                    while clock.now < deadline {
                        defer { index = (index + inFlight) % batches.count }
                        switch await cache.storeBatch(batches[index], notFound: []) {
                        case .written: entries += batches[index].count
                        case .deferred: deferred += 1
                        }
                    }
                    return (entries, deferred)
                }
            }
            return await group.reduce(into: (0, 0)) {
                $0.0 += $1.0; $0.1 += $1.1
            }
        }
        let elapsed = clock.now - started
        return (totals.0, totals.1, elapsed.timeInterval)
    }
}
