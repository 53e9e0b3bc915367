import ChatRuntime
import Testing

@testable import Actors

@Suite("ClusterStateMachine")
struct ClusterStateMachineTests {
    typealias Machine = ClusterStateMachine
    typealias Event = Machine.Event
    typealias Action = Machine.Action

    static let maxRetries = 2
    /// No jitter: backoff 1s, 2s, 4s, capped at 8s.
    static let policy = Machine.Policy(
        retry: .init(
            maxRetries: maxRetries, backoff: Backoff(initial: .seconds(1), maximum: .seconds(8), jitter: 0),
            probeInterval: .seconds(5)),
        refreshInterval: .seconds(30))
    static let t0 = ContinuousClock.now
    static let a = RedisServerAddress(host: "127.0.0.1", port: 7001)
    static let b = RedisServerAddress(host: "127.0.0.1", port: 7002)
    static let c = RedisServerAddress(host: "127.0.0.1", port: 7003)

    /// Three primaries splitting the slots as `redis-cli --cluster create` does.
    static func table(_ owners: [RedisServerAddress] = [a, b, c]) -> SlotTable {
        let ranges = [0...5460, 5461...10922, 10923...16383]
        return SlotTable(
            ClusterTopology(
                shards: zip(ranges, owners).map { range, owner in
                    .init(slots: [range], primary: .init(id: "", address: owner))
                }))
    }

    struct Driver {
        var machine = Machine(policy: ClusterStateMachineTests.policy, now: ClusterStateMachineTests.t0)
        var random = SeededRandom(seed: 1)
        var now = ClusterStateMachineTests.t0

        @discardableResult
        mutating func feed(_ event: Event) -> [Action] {
            machine.handle(event, now: now, random: &random)
        }

        /// Started, topology read, every primary connected.
        static func ready() -> Driver {
            var driver = Driver()
            driver.feed(.start)
            driver.feed(.topologyLoaded(ClusterStateMachineTests.table()))
            for node in [a, b, c] { driver.feed(.nodeChanged(node, .ready)) }
            #expect(driver.machine.state == .ready)
            return driver
        }
    }

    @Test func startReadsTheTopologyThenOpensEveryPrimary() {
        var driver = Driver()
        #expect(driver.machine.state == .connecting)
        #expect(driver.feed(.start) == [.loadTopology])
        #expect(driver.machine.loading)
        let actions = driver.feed(.topologyLoaded(Self.table()))
        #expect(
            actions == [.openNode(Self.a), .openNode(Self.b), .openNode(Self.c), .scheduleRefresh(after: .seconds(5))])
        #expect(driver.machine.state == .connecting, "no primary is connected yet")
        driver.feed(.nodeChanged(Self.a, .ready))
        driver.feed(.nodeChanged(Self.b, .ready))
        #expect(driver.machine.state == .connecting)
        #expect(driver.feed(.nodeChanged(Self.c, .ready)) == [])
        #expect(driver.machine.state == .ready)
    }

    @Test func aSecondReadIsNotStartedWhileOneIsGoing() {
        var driver = Driver()
        driver.feed(.start)
        #expect(driver.feed(.refreshDue) == [])
        #expect(driver.feed(.moved(HashSlot(0)!, Self.a)) == [.openNode(Self.a)])
        driver.feed(.topologyFailed)
        #expect(driver.feed(.refreshDue) == [.loadTopology])
    }

    @Test func failedReadsBeforeAnyTopologyBackOffThenProbe() {
        var driver = Driver()
        driver.feed(.start)
        #expect(driver.feed(.topologyFailed) == [.scheduleRefresh(after: .seconds(1))])
        #expect(driver.machine.state == .reconnecting(attempt: 1))
        driver.feed(.refreshDue)
        #expect(driver.feed(.topologyFailed) == [.scheduleRefresh(after: .seconds(2))])
        #expect(driver.machine.state == .reconnecting(attempt: 2))
        driver.feed(.refreshDue)
        #expect(driver.feed(.topologyFailed) == [.scheduleRefresh(after: .seconds(5))], "the probe interval")
        #expect(driver.machine.state == .unavailable)
        driver.feed(.refreshDue)
        driver.feed(.topologyLoaded(Self.table()))
        #expect(driver.machine.failedLoads == 0)
        #expect(driver.machine.state == .connecting)
    }

    @Test func aFailedRefreshKeepsTheTableAndRetriesNoLaterThanTheRefreshInterval() {
        var driver = Driver.ready()
        driver.feed(.refreshDue)
        let actions = driver.feed(.topologyFailed)
        #expect(actions == [.scheduleRefresh(after: .seconds(1))])
        #expect(driver.machine.state == .ready, "the table still routes every slot")
        #expect(driver.machine.table == Self.table())
    }

    @Test func aLostPrimaryDegradesAndEachFailedReconnectReadsTheTopology() {
        var driver = Driver.ready()
        #expect(driver.feed(.nodeChanged(Self.b, .reconnecting(attempt: 1))) == [.loadTopology])
        #expect(driver.machine.state == .reconnecting(attempt: 1))
        // The read answers with the same table (the failover has not happened yet).
        #expect(driver.feed(.topologyLoaded(Self.table())) == [.scheduleRefresh(after: .seconds(5))])
        #expect(driver.feed(.nodeChanged(Self.b, .reconnecting(attempt: 2))) == [.loadTopology])
        driver.feed(.topologyLoaded(Self.table()))
        driver.feed(.nodeChanged(Self.b, .unavailable))
        #expect(driver.machine.state == .unavailable)
        // The replica at d was promoted: b is closed, d opened.
        let d = RedisServerAddress(host: "127.0.0.1", port: 7004)
        let actions = driver.feed(.topologyLoaded(Self.table([Self.a, d, Self.c])))
        #expect(actions == [.openNode(d), .closeNode(Self.b), .scheduleRefresh(after: .seconds(5))])
        #expect(driver.machine.state == .reconnecting(attempt: 1), "was ready once: a new primary connecting")
        driver.feed(.nodeChanged(d, .ready))
        #expect(driver.machine.state == .ready)
        #expect(driver.machine.nodes.keys.sorted { $0.port < $1.port } == [Self.a, Self.c, d])
    }

    @Test func aClosedNodesLateChangesAreIgnored() {
        var driver = Driver.ready()
        let d = RedisServerAddress(host: "127.0.0.1", port: 7004)
        driver.feed(.refreshDue)
        driver.feed(.topologyLoaded(Self.table([Self.a, d, Self.c])))
        #expect(driver.feed(.nodeChanged(Self.b, .reconnecting(attempt: 1))) == [])
        #expect(driver.machine.nodes[Self.b] == nil)
    }

    @Test func movedRoutesTheSlotAtOnceAndReadsTheTopology() {
        var driver = Driver.ready()
        let slot = HashSlot(100)!
        #expect(driver.machine.table.primary(for: slot) == Self.a)
        #expect(driver.feed(.moved(slot, Self.b)) == [.loadTopology])
        #expect(driver.machine.table.primary(for: slot) == Self.b)
        #expect(driver.machine.state == .ready)
        // A MOVED to a node not known yet opens it; its slot waits for it.
        let d = RedisServerAddress(host: "127.0.0.1", port: 7004)
        #expect(driver.feed(.moved(HashSlot(200)!, d)) == [.openNode(d)], "a read is going already")
        #expect(driver.machine.state == .reconnecting(attempt: 1))
    }

    @Test func anUncoveredSlotMakesTheClusterUnavailable() {
        var driver = Driver()
        driver.feed(.start)
        let partial = SlotTable(
            ClusterTopology(shards: [.init(slots: [0...8000], primary: .init(id: "", address: Self.a))]))
        driver.feed(.topologyLoaded(partial))
        driver.feed(.nodeChanged(Self.a, .ready))
        #expect(driver.machine.state == .unavailable)
    }

    @Test func shutdownStopsEverythingAndIsFinal() {
        var driver = Driver.ready()
        #expect(driver.feed(.shutdown) == [.stop])
        #expect(driver.machine.state == .stopped)
        let events: [Event] = [
            .start, .refreshDue, .topologyFailed, .topologyLoaded(Self.table()), .nodeChanged(Self.a, .unavailable),
            .moved(HashSlot(1)!, Self.b), .shutdown,
        ]
        for event in events {
            #expect(driver.feed(event) == [], "\(event)")
            #expect(driver.machine.state == .stopped)
        }
    }

    /// Every event in every reachable state: the derived state is ready exactly when every
    /// slot's primary is, and a not-ready primary always comes with a topology read going.
    @Test func theDerivedStateFollowsThePrimariesInEveryState() {
        let events: [Event] = [
            .refreshDue, .topologyFailed, .topologyLoaded(Self.table()), .nodeChanged(Self.a, .ready),
            .nodeChanged(Self.b, .reconnecting(attempt: 1)), .nodeChanged(Self.c, .unavailable),
            .moved(HashSlot(0)!, Self.b),
        ]
        var driver = Driver()
        driver.feed(.start)
        var random = SeededRandom(seed: 7)
        for _ in 0..<2000 {
            let event = events[Int.random(in: 0..<events.count, using: &random)]
            driver.feed(event)
            let machine = driver.machine
            let owners = machine.table.servingPrimaries
            let allReady =
                machine.loaded && machine.table.uncoveredSlots == 0
                && owners.allSatisfy { machine.nodes[$0] == .ready }
            #expect((machine.state == .ready) == allReady, "after \(event): \(machine.state)")
            #expect(Set(machine.nodes.keys).isSuperset(of: owners), "a connection for every slot owner")
        }
    }
}
