// Redis reply handling: hiredis' reader parses RESP and the reply is copied into a RESPValue,
// as every reply on a RedisConnection is; then whole round trips through RedisConnection to a
// redis-server this benchmark starts (skipped when redis-server is not installed).
import Actors
import Benchmark
import CHiredis
import Foundation
import Logging
import StubUpstream
@_spi(Benchmarks) import ChatRuntime

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2))

    let entry = EntryCodec.encodeForRedis(
        ParticipantsEntry(StubDataset(chatCount: 200_000, participantsPerChat: 20).chat(123_456), fetchedAt: Date()))
    let getReply = RESPWire.bulk(entry)
    let readPair = RESPWire.bulk(entry) + RESPWire.integer(0)
    let batchReplies = Array(repeating: Array("+OK\r\n".utf8), count: 50).flatMap { $0 }

    Benchmark("RESP parse + copy: GET reply (\(entry.count) B)") { benchmark in
        var reader = ReplyReader()
        for _ in benchmark.scaledIterations { reader.feed(getReply) { blackHole($0) } }
    }
    Benchmark("RESP parse + copy: GET + EXISTS replies of one read") { benchmark in
        var reader = ReplyReader()
        for _ in benchmark.scaledIterations { reader.feed(readPair) { blackHole($0) } }
    }
    Benchmark("RESP parse + copy: 50 +OK of a batch write", configuration: .init(scalingFactor: .one)) { benchmark in
        var reader = ReplyReader()
        for _ in benchmark.scaledIterations { reader.feed(batchReplies) { blackHole($0) } }
    }

    let redis = LiveRedis.shared
    let live = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .mallocCountTotal], scalingFactor: .one, maxDuration: .seconds(3),
        skip: !LiveRedis.available)
    let key = ChatID(validating: "chat-123456")!.redisKey
    let sets = (0..<50).map { RedisCommand.set("bench:\($0)", value: entry, expireSeconds: 3600) }
    Benchmark("RedisConnection.pipeline: GET + EXISTS (live)", configuration: live) { benchmark in
        let connection = try await redis.connection()
        for _ in benchmark.scaledIterations {
            blackHole(try await connection.pipeline([.get(key), RedisCommand("EXISTS", ["nf:\(key)"])]))
        }
    } setup: {
        try await redis.start()
        _ = try await redis.connection().send(.set(key, value: entry))
    } teardown: {
        await redis.stop()
    }
    Benchmark("RedisConnection.pipeline: 50 SET EX of entries (live)", configuration: live) { benchmark in
        let connection = try await redis.connection()
        for _ in benchmark.scaledIterations { blackHole(try await connection.pipeline(sets)) }
    } setup: {
        try await redis.start()
    } teardown: {
        await redis.stop()
    }
}

/// RESP encodings of replies, as Redis writes them.
enum RESPWire {
    static func bulk(_ bytes: [UInt8]) -> [UInt8] { Array("$\(bytes.count)\r\n".utf8) + bytes + Array("\r\n".utf8) }
    static func integer(_ value: Int) -> [UInt8] { Array(":\(value)\r\n".utf8) }
}

/// hiredis' reply reader, as the async context uses it, handing out ``RESPValue``s.
struct ReplyReader: ~Copyable {
    private let reader: UnsafeMutablePointer<redisReader>

    init() { reader = redisReaderCreate() }
    deinit { redisReaderFree(reader) }

    func feed(_ bytes: [UInt8], each: (RESPValue) -> Void) {
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { _ = redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        var reply: UnsafeMutableRawPointer?
        while redisReaderGetReply(reader, &reply) == REDIS_OK, let parsed = reply {
            each(RESPValue.copying(parsed.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(parsed)
            reply = nil
        }
    }
}
