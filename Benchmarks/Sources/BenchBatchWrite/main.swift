// bench-batch-write: how many participants entries per second the sync path writes to Redis.
//
// Drives the real write path of a sync batch, `ParticipantsCache.storeBatch` (L1, JSON encoding,
// one pipelined SET ... EX per entry through the RedisSupervisor's connection), with N batches
// in flight on one event loop, as the Batcher does. Prints one JSON object on stdout.
//
//   bench-batch-write --port 6379 [--batch-size 50] [--in-flight 50] [--seconds 5] [--participants 20]
//   bench-batch-write --cluster 127.0.0.1:7000,127.0.0.1:7001 ...   cluster mode: RedisCluster and its front
//                                                                  supervisor, one pipeline per primary per batch
import Actors
import ChatRuntime
import Foundation
import Logging

let options: BatchWriteOptions
do {
    options = try BatchWriteOptions(arguments: Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("bench-batch-write: \(error)\n\(BatchWriteOptions.usage)\n".utf8))
    exit(64)
}
do {
    let result = try await BatchWriteBenchmark(options: options).run()
    print(result.json)
} catch {
    FileHandle.standardError.write(Data("bench-batch-write: \(error)\n".utf8))
    exit(1)
}
