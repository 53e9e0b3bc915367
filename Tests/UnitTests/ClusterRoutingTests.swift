import Actors
import ChatRuntime
import Testing

/// Which key routes each command the service sends, and that every multi-key command and
/// script of the service keeps its keys in one slot.
@Suite("Cluster routing")
struct ClusterRoutingTests {
    static func key(_ command: RedisCommand) -> String? {
        command.routingKey.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func plainCommandsRouteByTheirFirstArgument() {
        #expect(Self.key(.get("a")) == "a")
        #expect(Self.key(.set("b", value: [1])) == "b")
        #expect(Self.key(.del("c", "d")) == "c")
        #expect(Self.key(RedisCommand("zadd", ["tracked", "1", "x"])) == "tracked")
    }

    @Test func keylessCommandsRouteAnywhere() {
        #expect(Self.key(.ping) == nil)
        #expect(Self.key(RedisCommand("ROLE", [])) == nil)
        #expect(Self.key(RedisCommand("CLUSTER", ["SHARDS"])) == nil)
        #expect(Self.key(RedisCommand("EVAL", ["return 1", "0"])) == nil, "a script without keys")
    }

    @Test func scriptsRouteByTheirFirstKey() {
        #expect(Self.key(RedisCommand("EVAL", ["script", "2", "k1", "k2", "arg"])) == "k1")
        #expect(Self.key(RedisCommand("evalsha", ["sha", "1", "k"])) == "k")
    }

    @Test func streamCommandsRouteByTheStream() {
        let read = RedisCommand(
            "XREADGROUP", ["GROUP", "g", "c", "COUNT", "10", "BLOCK", "5", "streams", CoordinationKeys.batches, ">"])
        #expect(Self.key(read) == CoordinationKeys.batches)
        #expect(Self.key(RedisCommand("XGROUP", ["CREATE", "s", "g", "0"])) == "s")
        #expect(Self.key(RedisCommand("XINFO", ["GROUPS", "s"])) == "s")
        #expect(Self.key(RedisCommand("XADD", ["s", "*", "f", "v"])) == "s")
    }

    @Test func everyCoordinationKeyIsInOneSlot() {
        let keys =
            [
                CoordinationKeys.leader, CoordinationKeys.fence, CoordinationKeys.batches, CoordinationKeys.runs,
                CoordinationKeys.run(RunID(rawValue: "r1")), CoordinationKeys.runErrors(RunID(rawValue: "r1")),
                ParticipantsKeys.tracked, ParticipantsKeys.invalidations,
            ] + CoordinationKeys.TickSlot.allCases.map(CoordinationKeys.tick) + CoordinationKeys.allActive
        let slots = Set(keys.map { HashSlot(key: $0) })
        #expect(slots == [HashSlot(key: "sync")])
        #expect(keys.allSatisfy { $0.hasPrefix("participants:v2:{sync}:") })
    }

    @Test func aChatsKeysShareItsSlot() {
        let chat = ChatID(validating: "chat-42")!
        let slots = Set(
            [ParticipantsKeys.entry(chat), ParticipantsKeys.notFound(chat), ParticipantsKeys.refreshLock(chat)].map {
                HashSlot(key: $0)
            })
        #expect(slots == [HashSlot(key: "chat-42")])
    }
}
