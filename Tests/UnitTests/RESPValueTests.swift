import Actors
import CHiredis
import Testing

@testable import ChatRuntime

@Suite("RESPValue")
struct RESPValueTests {
    /// Parses `wire` with hiredis' own reader, so the conversion sees real `redisReply` trees.
    private func parse(_ wire: String) throws -> RESPValue {
        try parse(Array(wire.utf8))
    }

    private func parse(_ wire: [UInt8]) throws -> RESPValue {
        let reader = try #require(redisReaderCreate())
        defer { redisReaderFree(reader) }
        let fed = wire.withUnsafeBufferPointer {
            $0.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        #expect(fed == REDIS_OK)
        var reply: UnsafeMutableRawPointer?
        #expect(redisReaderGetReply(reader, &reply) == REDIS_OK)
        let replyPointer = try #require(reply)
        defer { freeReplyObject(replyPointer) }
        return RESPValue(reply: replyPointer.assumingMemoryBound(to: redisReply.self))
    }

    @Test func convertsEveryRESP2ReplyType() throws {
        #expect(try parse("+OK\r\n") == .simpleString("OK"))
        #expect(try parse("-ERR unknown command\r\n") == .error("ERR unknown command"))
        #expect(try parse(":-42\r\n") == .integer(-42))
        #expect(try parse(":9223372036854775807\r\n") == .integer(.max))
        #expect(try parse("$5\r\nhello\r\n") == .bulkString(Array("hello".utf8)))
        #expect(try parse("$0\r\n\r\n") == .bulkString([]))
        #expect(try parse("$-1\r\n") == .null)
        #expect(try parse("*-1\r\n") == .null)
        #expect(try parse("*0\r\n") == .array([]))
    }

    @Test func bulkStringsAreBinarySafe() throws {
        let payload: [UInt8] = [0, 13, 10, 255, 0x80, 36, 0]
        let wire = Array("$\(payload.count)\r\n".utf8) + payload + Array("\r\n".utf8)
        #expect(try parse(wire) == .bulkString(payload))
    }

    @Test func convertsNestedArrays() throws {
        let value = try parse("*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n+PONG\r\n")
        #expect(value == .array([.integer(1), .array([.bulkString([97]), .null]), .simpleString("PONG")]))
    }

    @Test func accessorsReadTheMatchingKindOnly() {
        let bulk = RESPValue.bulkString(Array("12".utf8))
        #expect(bulk.string == "12")
        #expect(bulk.bytes == Array("12".utf8))
        #expect(bulk.int == 12)
        #expect(bulk.array == nil)
        #expect(!bulk.isNull)

        #expect(RESPValue.simpleString("OK").string == "OK")
        #expect(RESPValue.simpleString("OK").int == nil)
        #expect(RESPValue.integer(7).int == 7)
        #expect(RESPValue.integer(7).string == nil)
        #expect(RESPValue.error("ERR x").string == nil)
        #expect(RESPValue.error("ERR x").errorMessage == "ERR x")
        #expect(RESPValue.null.isNull)
        #expect(RESPValue.null.string == nil)
        #expect(RESPValue.null.array == nil)
        #expect(RESPValue.array([.integer(1)]).array == [.integer(1)])
        #expect(RESPValue.bulkString([0xFF]).string == "\u{FFFD}")
    }

    @Test func descriptionElidesLongBulkStrings() {
        let long = RESPValue.bulkString(Array(repeating: UInt8(ascii: "x"), count: 100))
        #expect(long.description.contains("(100 bytes)"))
        #expect(RESPValue.array([.integer(1), .null]).description == "[:1, (nil)]")
    }
}

@Suite("RedisCommand")
struct RedisCommandTests {
    @Test func argumentsAreTheWholeArgv() {
        #expect(RedisCommand("GET", ["k"]).arguments == [Array("GET".utf8), Array("k".utf8)])
        #expect(RedisCommand.ping.arguments == [Array("PING".utf8)])
        #expect(RedisCommand("SET", arguments: [[0], [13, 10]]).arguments == [Array("SET".utf8), [0], [13, 10]])
    }

    @Test func helpersBuildTheExpectedCommands() {
        #expect(RedisCommand.set("k", value: [1, 2]) == RedisCommand("SET", arguments: [Array("k".utf8), [1, 2]]))
        #expect(
            RedisCommand.set("k", value: [1], expireSeconds: 60)
                == RedisCommand("SET", arguments: [Array("k".utf8), [1], Array("EX".utf8), Array("60".utf8)]))
        #expect(RedisCommand.del("a", "b") == RedisCommand("DEL", ["a", "b"]))
        #expect(RedisCommand.auth(username: nil, password: "p") == RedisCommand("AUTH", ["p"]))
        #expect(RedisCommand.auth(username: "u", password: "p") == RedisCommand("AUTH", ["u", "p"]))
        #expect(RedisCommand.select(3) == RedisCommand("SELECT", ["3"]))
    }

    @Test func descriptionHidesArguments() {
        #expect(RedisCommand.auth(username: "u", password: "secret").description == "AUTH (2 arguments)")
    }

    @Test func wireFormatIsWhatHiredisFormats() {
        var random = SeededRandom(seed: 6)
        var commands = [
            RedisCommand("SET", arguments: [[], [0, 1, 2], Array("\r\n".utf8)]),
            RedisCommand.ping,
            RedisCommand.set(
                "participants:v1:{chat-1}", value: Array(repeating: 0x7B, count: 2736), expireSeconds: 90_061),
            RedisCommand("X", arguments: (0..<12).map { _ in Array(repeating: 0, count: 9) }),
        ]
        for _ in 0..<200 {
            let count = Int.random(in: 0...12, using: &random)
            commands.append(
                RedisCommand(
                    "CMD",
                    arguments: (0..<count).map { _ in
                        let length = [0, 1, 9, 10, 99, 100, 1000, Int.random(in: 0...5000, using: &random)]
                            .randomElement(using: &random)!
                        return (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
                    }))
        }
        for command in commands {
            var wire: [UInt8] = [9, 9]
            command.appendWireFormat(to: &wire)
            #expect(Array(wire.dropFirst(2)) == Self.hiredisFormat(command.arguments))
            #expect(wire.count - 2 == command.wireFormatCount)
        }
    }

    /// `redisFormatCommandArgv`, the formatter `redisAsyncCommandArgv` uses, as the reference.
    private static func hiredisFormat(_ arguments: [[UInt8]]) -> [UInt8] {
        let copies = arguments.map { argument -> UnsafeMutablePointer<CChar> in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(argument.count, 1))
            argument.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) { chars in
                    if let base = chars.baseAddress { copy.update(from: base, count: chars.count) }
                }
            }
            return copy
        }
        defer { copies.forEach { $0.deallocate() } }
        var argv: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) }
        let lengths = arguments.map { $0.count }
        var target: UnsafeMutablePointer<CChar>?
        let length = redisFormatCommandArgv(&target, Int32(arguments.count), &argv, lengths)
        guard length >= 0, let target else { return [] }
        defer { redisFreeCommand(target) }
        return target.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
            Array(UnsafeBufferPointer(start: $0, count: Int(length)))
        }
    }

    @Test func pubSubAndMonitorAreFlagged() {
        #expect(RedisCommand("subscribe", ["c"]).breaksReplyOrder)
        #expect(RedisCommand("MONITOR", []).breaksReplyOrder)
        #expect(!RedisCommand.ping.breaksReplyOrder)
        for name in ["SUBSCRIBE", "psubscribe", "SSubscribe", "UNSUBSCRIBE", "PUNSUBSCRIBE", "sunsubscribe", "monitor"]
        {
            #expect(RedisCommand(name, []).breaksReplyOrder, "\(name)")
        }
        for name in ["SET", "GET", "EXISTS", "EVALSHA", "XREADGROUP", "ZRANGEBYSCORE", "SUBSCRIBEX", "MONITORS", ""] {
            #expect(!RedisCommand(name, []).breaksReplyOrder, "\(name)")
        }
    }
}

@Suite("FIFOQueue")
struct FIFOQueueTests {
    @Test func keepsOrderAcrossCompaction() {
        var queue = FIFOQueue<Int>()
        var expected = 0
        var next = 0
        // Interleave so the dead prefix grows past the compaction threshold many times.
        for round in 0..<50 {
            for _ in 0..<(100 + round) {
                queue.append(next)
                next += 1
            }
            for _ in 0..<90 {
                #expect(queue.popFirst() == expected)
                expected += 1
            }
        }
        #expect(queue.count == next - expected)
        #expect(queue.first == expected)
        while let value = queue.popFirst() {
            #expect(value == expected)
            expected += 1
        }
        #expect(expected == next)
        #expect(queue.isEmpty)
        #expect(queue.popFirst() == nil)
    }
}
