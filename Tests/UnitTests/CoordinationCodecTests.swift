import Foundation
import Testing

@testable import Actors
@testable import ChatRuntime

/// The pure parts of multi-instance coordination: the invalidation stream's entry format, where
/// to resume reading it after an outage, stream ids, sentinel addresses and replies.
@Suite("Coordination codecs")
struct CoordinationCodecTests {
    static func chat(_ id: String) -> ChatID { ChatID(validating: id)! }

    @Test func streamIDsParseAndOrderLikeRedis() {
        #expect(RedisStreamID("1700000000000-0") == RedisStreamID(milliseconds: 1_700_000_000_000, sequence: 0))
        #expect(RedisStreamID("5-10")! > RedisStreamID("5-9")!)
        #expect(RedisStreamID("6-0")! > RedisStreamID("5-99")!)
        #expect(RedisStreamID("0-0") == .zero)
        for bad in ["$", "*", "+", "5", "5-", "-5", "a-b", "1-2-3", ""] {
            #expect(RedisStreamID(bad) == nil, "\(bad)")
        }
        #expect(RedisStreamID(milliseconds: 12, sequence: 3).description == "12-3")
    }

    @Test func publishCommandRoundTripsThroughAStreamEntry() throws {
        let at = Date(timeIntervalSince1970: 1_795_000_000.123)
        let entries = [
            ParticipantsEntry(chatID: Self.chat("chat-1"), participants: [], version: 3, fetchedAt: at),
            ParticipantsEntry(
                chatID: Self.chat("instance"), participants: [], version: 1, fetchedAt: at.addingTimeInterval(1)),
        ]
        let command = L1Invalidation.publishCommand(instanceID: "node-a", entries: entries, maxLength: 500)
        let text = command.arguments.map { String(decoding: $0, as: UTF8.self) }
        #expect(
            Array(text.prefix(8)) == [
                "XADD", ParticipantsKeys.invalidations, "MAXLEN", "~", "500", "*", "@instance", "node-a",
            ])

        // What XREAD returns for that entry.
        let fields = text.dropFirst(6).map { RESPValue.bulkString(Array($0.utf8)) }
        let reply = RESPValue.array([
            .array([
                .bulkString(Array(ParticipantsKeys.invalidations.utf8)),
                .array([.array([.bulkString(Array("1795000000123-0".utf8)), .array(Array(fields))])]),
            ])
        ])
        let parsed = L1Invalidation.parseReadReply(reply)
        #expect(
            parsed == [
                L1Invalidation(
                    id: RedisStreamID(milliseconds: 1_795_000_000_123, sequence: 0), instanceID: "node-a",
                    written: [
                        .init(chat: Self.chat("chat-1"), fetchedAt: at),
                        // A chat named like the field is still a chat: the field has an '@'.
                        .init(chat: Self.chat("instance"), fetchedAt: at.addingTimeInterval(1)),
                    ])
            ])
    }

    @Test func malformedStreamEntriesAreSkippedNotFatal() {
        #expect(L1Invalidation.parseReadReply(.null).isEmpty)
        let junk = RESPValue.array([
            .array([
                .bulkString(Array("s".utf8)),
                .array([
                    .array([.bulkString(Array("not-an-id".utf8)), .array([])]),
                    .array([
                        .bulkString(Array("7-1".utf8)),
                        .array([
                            .bulkString(Array("{bad}".utf8)), .bulkString(Array("2026-01-01T00:00:00.000Z".utf8)),
                            .bulkString(Array("chat-2".utf8)), .bulkString(Array("yesterday".utf8)),
                            .bulkString(Array("chat-3".utf8)), .bulkString(Array("2026-01-01T00:00:00.000Z".utf8)),
                            .bulkString(Array("dangling".utf8)),
                        ]),
                    ]),
                ]),
            ])
        ])
        let parsed = L1Invalidation.parseReadReply(junk)
        #expect(parsed.count == 1)
        #expect(parsed.first?.instanceID == "")
        #expect(parsed.first?.written.map(\.chat) == [Self.chat("chat-3")])
    }

    @Test func resumingAfterAnOutage() {
        let id = { (text: String) in RedisStreamID(text)! }
        typealias Point = InvalidationResumePoint
        // First start: skip history, nothing missed.
        #expect(
            Point.decide(lastSeen: nil, first: id("1-0"), last: id("9-0"))
                == Point(after: id("9-0"), mayHaveMissedEntries: false))
        #expect(Point.decide(lastSeen: nil, first: nil, last: nil) == Point(after: .zero, mayHaveMissedEntries: false))
        // The stream still holds what followed our last entry.
        #expect(
            Point.decide(lastSeen: id("5-0"), first: id("1-0"), last: id("9-0"))
                == Point(after: id("5-0"), mayHaveMissedEntries: false))
        #expect(
            Point.decide(lastSeen: id("5-0"), first: id("5-0"), last: id("5-0"))
                == Point(after: id("5-0"), mayHaveMissedEntries: false))
        // Trimmed past our position, or recreated after a restart that lost it.
        #expect(
            Point.decide(lastSeen: id("5-0"), first: id("6-0"), last: id("9-0"))
                == Point(after: id("5-0"), mayHaveMissedEntries: true))
        // Gone altogether.
        #expect(
            Point.decide(lastSeen: id("5-0"), first: nil, last: nil) == Point(after: .zero, mayHaveMissedEntries: true))
        // Back in time: a promoted replica that lacked our last entries.
        #expect(
            Point.decide(lastSeen: id("5-0"), first: id("1-0"), last: id("4-0"))
                == Point(after: id("4-0"), mayHaveMissedEntries: true))
        // Nothing had been read (the stream was empty): new entries are simply read.
        #expect(
            Point.decide(lastSeen: .zero, first: id("6-0"), last: id("9-0"))
                == Point(after: .zero, mayHaveMissedEntries: false))
        #expect(
            Point.decide(lastSeen: .zero, first: nil, last: nil) == Point(after: .zero, mayHaveMissedEntries: false))
    }

    @Test func sentinelAddressesParse() throws {
        #expect(try RedisServerAddress.parseList("") == [])
        #expect(
            try RedisServerAddress.parseList(" 10.0.0.1:26379 ,[::1]:26380") == [
                RedisServerAddress(host: "10.0.0.1", port: 26379), RedisServerAddress(host: "::1", port: 26380),
            ])
        #expect(RedisServerAddress(host: "::1", port: 1).description == "[::1]:1")
        for bad in [
            "host", "host:", ":26379", "host:0", "host:65536", "host:2x", "a:1,", "::1:26379", "[::1]26379", "[::1",
            "a b:1",
        ] {
            #expect(throws: RedisEndpointError.self, "\(bad)") { try RedisServerAddress.parseList(bad) }
        }
    }

    @Test func sentinelRepliesParse() throws {
        let reply = RESPValue.array([.bulkString(Array("127.0.0.1".utf8)), .bulkString(Array("6380".utf8))])
        #expect(try RedisSentinel.masterAddress(from: reply) == RedisServerAddress(host: "127.0.0.1", port: 6380))
        #expect(throws: RedisError.self) { try RedisSentinel.masterAddress(from: .null) }
        #expect(throws: RedisError.self) {
            try RedisSentinel.masterAddress(from: .array([.bulkString(Array("h".utf8))]))
        }
        #expect(
            try RedisSentinel.role(from: .array([.bulkString(Array("master".utf8)), .integer(0), .array([])]))
                == "master")
        #expect(try RedisSentinel.role(from: .array([.bulkString(Array("slave".utf8))])) == "slave")
        #expect(throws: RedisError.self) { try RedisSentinel.role(from: .integer(1)) }
        #expect(RedisSupervisor.isReadOnlyRefusal("READONLY You can't write against a read only replica."))
        #expect(!RedisSupervisor.isReadOnlyRefusal("ERR unknown command"))
    }
}
