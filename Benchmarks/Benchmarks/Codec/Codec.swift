// JSON of one participants entry (20 participants, the stub upstream's shape and size): the
// hand-written codec the service uses, and Foundation's coders on the same value for scale.
import Actors
import Benchmark
import Foundation
import StubUpstream

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2))

    let entry = Fixtures.entry
    let redisBytes = EntryCodec.encodeForRedis(entry)
    let batchBody = Fixtures.batchGetBody(chats: 50)

    Benchmark("EntryCodec.encodeForRedis (\(redisBytes.count) B)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(EntryCodec.encodeForRedis(entry)) }
    }
    Benchmark("EntryCodec.decodeFromRedis (\(redisBytes.count) B)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? EntryCodec.decodeFromRedis(redisBytes)) }
    }
    Benchmark("EntryCodec.encodeResponse") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(EntryCodec.encodeResponse(entry, stale: false, source: .memory)) }
    }
    Benchmark("Foundation JSONEncoder, same entry") { benchmark in
        let encoder = JSONEncoder()
        for _ in benchmark.scaledIterations { blackHole(try? encoder.encode(entry)) }
    }
    Benchmark("Foundation JSONDecoder, same entry") { benchmark in
        let decoder = JSONDecoder()
        let data = Data(redisBytes)
        for _ in benchmark.scaledIterations { blackHole(try? decoder.decode(ParticipantsEntry.self, from: data)) }
    }
    Benchmark(
        "UpstreamDecoder.decodeBatchGet (50 chats, \(batchBody.count / 1024) KiB)",
        configuration: .init(scalingFactor: .one)
    ) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? UpstreamDecoder.decodeBatchGet(batchBody)) }
    }

    Benchmark(
        "Foundation JSONDecoder, same batch answer (the fallback)",
        configuration: .init(scalingFactor: .one)
    ) { benchmark in
        let data = Data(batchBody)
        for _ in benchmark.scaledIterations { blackHole(try? JSONDecoder().decode(BatchGetResponse.self, from: data)) }
    }

    let secret = "bench-secret"
    let token = JWTSigner.sign(JWTClaims(subject: "bench", expiresAt: Date().addingTimeInterval(86_400)), secret: Array(secret.utf8))
    // jwt-kit since issue 14 (the hand-written HS256 verifier is gone); a cache miss pays this.
    Benchmark("TokenVerifier.verify (HS256, jwt-kit)") { benchmark async in
        let verifier = await TokenVerifier(secret: secret)
        let now = Date()
        for _ in benchmark.scaledIterations { blackHole(await verifier.verify(token, now: now)) }
    }
}

enum Fixtures {
    static let dataset = StubDataset(chatCount: 1_000_000, participantsPerChat: 20)

    /// Chat 123456 as the cache holds it: realistic id and name lengths.
    static var entry: ParticipantsEntry {
        ParticipantsEntry(dataset.chat(123_456), fetchedAt: Date(timeIntervalSince1970: 1_760_000_000.123))
    }

    /// A `batchGet` answer as the stub writes it.
    static func batchGetBody(chats: Int) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: chats * 3_000)
        writer.appendRaw(#"{"chats":["#)
        for number in 1...chats {
            if number > 1 { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            dataset.writeChat(100_000 + number, into: &writer)
        }
        writer.appendRaw(#"],"not_found":[]}"#)
        return writer.bytes
    }
}
