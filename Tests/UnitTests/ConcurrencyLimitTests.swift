import Testing

@testable import Actors

@Suite("ConcurrencyLimit")
struct ConcurrencyLimitTests {
    static func ms(_ milliseconds: Double) -> Duration { .nanoseconds(Int64(milliseconds * 1_000_000)) }

    static func adaptive(minimum: Int = 1, maximum: Int = 64, initial: Int = 4, backoffRatio: Double = 0.9)
        -> ConcurrencyLimit
    {
        ConcurrencyLimit(
            settings: .init(
                mode: .adaptive, minimum: minimum, maximum: maximum, initial: initial, backoffRatio: backoffRatio))
    }

    /// Records `count` answers in `latency` ms, each started with `inFlight` calls (default: the limit).
    static func answer(_ limit: inout ConcurrencyLimit, _ count: Int, ms latency: Double = 50, inFlight: Int? = nil) {
        for _ in 0..<count { limit.record(.answered(latency: ms(latency)), inFlight: inFlight ?? limit.limit) }
    }

    // MARK: Transitions

    @Test func slowStartDoublesPerWindowUpToTheMaximum() {
        var limit = Self.adaptive()
        #expect(limit.limit == 4 && limit.isInSlowStart)
        var seen: [Int] = []
        for _ in 0..<60 { seen.append(limit.record(.answered(latency: Self.ms(50)), inFlight: limit.limit)) }
        #expect(seen[2] == 4 && seen[3] == 8)
        #expect(seen[11] == 16 && seen[27] == 32 && seen[59] == 64)
        Self.answer(&limit, 500)
        #expect(limit.limit == 64)
    }

    @Test(arguments: [(maximum: 10, initial: 4), (maximum: 3, initial: 1), (maximum: 64, initial: 64)])
    func theLimitNeverPassesTheMaximum(maximum: Int, initial: Int) {
        var limit = Self.adaptive(maximum: maximum, initial: initial)
        Self.answer(&limit, 300)
        #expect(limit.limit == maximum)
    }

    @Test func afterTheFirstCongestionTheLimitGrowsByOnePerWindow() {
        var limit = Self.adaptive()
        Self.answer(&limit, 12)
        #expect(limit.limit == 16)
        limit.record(.overloaded, inFlight: 16)
        #expect(limit.limit == 14 && !limit.isInSlowStart)
        Self.answer(&limit, 16, inFlight: 14) // the 16 calls in flight at the decrease
        #expect(limit.limit == 14)
        Self.answer(&limit, 13)
        #expect(limit.limit == 14)
        Self.answer(&limit, 1)
        #expect(limit.limit == 15)
        Self.answer(&limit, 15)
        #expect(limit.limit == 16)
    }

    @Test func aBurstOfFailuresDecreasesOncePerWindow() {
        var limit = Self.adaptive(initial: 32)
        for _ in 0..<33 { limit.record(.overloaded, inFlight: 32) }
        #expect(limit.limit == 28)
        limit.record(.overloaded, inFlight: 28)
        #expect(limit.limit == 25)
    }

    /// (minimum, initial, backoffRatio, overloads, expected limit)
    static let floors: [(Int, Int, Double, Int, Int)] = [
        (2, 4, 0.5, 100, 2),
        (1, 1, 0.95, 10, 1),
        (1, 3, 0.95, 1, 2), // a decrease takes at least one
        (1, 64, 0.5, 1, 32),
        (5, 64, 0.5, 1_000, 5),
    ]

    @Test(arguments: floors)
    func decreasesStopAtTheMinimum(minimum: Int, initial: Int, backoffRatio: Double, overloads: Int, expected: Int) {
        var limit = Self.adaptive(minimum: minimum, initial: initial, backoffRatio: backoffRatio)
        for _ in 0..<overloads { limit.record(.overloaded, inFlight: limit.limit) }
        #expect(limit.limit == expected)
    }

    @Test func twoAnswersAboveTheToleranceInARowBackOff() {
        var limit = Self.adaptive(initial: 32)
        Self.answer(&limit, 8)
        #expect(limit.baseline == Self.ms(50))
        Self.answer(&limit, 1, ms: 150)
        #expect(limit.limit == 32 && limit.isInSlowStart, "one slow answer is noise")
        Self.answer(&limit, 1, ms: 50)
        Self.answer(&limit, 2, ms: 150)
        #expect(limit.limit == 28 && !limit.isInSlowStart)
    }

    @Test func elevatedLatencyEndsSlowStartThenCostsOnePerWindow() {
        var limit = Self.adaptive(initial: 8)
        Self.answer(&limit, 8)
        #expect(limit.limit == 16)
        Self.answer(&limit, 15, ms: 90)
        #expect(limit.limit == 16 && limit.isInSlowStart)
        Self.answer(&limit, 1, ms: 90)
        #expect(limit.limit == 14 && !limit.isInSlowStart)
        Self.answer(&limit, 16, ms: 90, inFlight: 14) // recovery
        #expect(limit.limit == 14)
        Self.answer(&limit, 14, ms: 99)
        #expect(limit.limit == 13)
        Self.answer(&limit, 6, ms: 99)
        Self.answer(&limit, 7, ms: 60)
        #expect(limit.limit == 14, "a window of mostly good answers grows")
    }

    @Test func anInstantUpstreamWithJitterStillReachesTheMaximum() {
        var limit = Self.adaptive()
        var random = SeededRandom(seed: 3)
        for _ in 0..<80 {
            limit.record(.answered(latency: Self.ms(0.2 + Double(random.next() % 1000) / 100)), inFlight: limit.limit)
        }
        #expect(limit.limit == 64)
    }

    @Test func applicationLimitedAnswersDoNotGrowTheLimit() {
        var limit = Self.adaptive(initial: 16)
        Self.answer(&limit, 200, inFlight: 7)
        #expect(limit.limit == 16)
        Self.answer(&limit, 16, inFlight: 8)
        #expect(limit.limit == 32)
        limit.record(.overloaded, inFlight: 1)
        #expect(limit.limit == 28, "overload backs off whatever the concurrency")
    }

    @Test func ignoredSamplesChangeNothing() {
        var limit = Self.adaptive(initial: 8)
        let before = limit
        for _ in 0..<100 { limit.record(.ignored, inFlight: 8) }
        #expect(limit == before)
    }

    @Test func fixedModeAlwaysAllowsTheMaximum() {
        var limit = ConcurrencyLimit(settings: .init(mode: .fixed, maximum: 12))
        #expect(limit.limit == 12)
        for _ in 0..<50 { limit.record(.overloaded, inFlight: 12) }
        Self.answer(&limit, 50, ms: 1)
        Self.answer(&limit, 50, ms: 5_000)
        #expect(limit.limit == 12)
    }

    @Test func defaultInitialIsEightWithinTheBounds() {
        #expect(ConcurrencyLimit.Settings().initial == 8)
        #expect(ConcurrencyLimit.Settings(maximum: 2).initial == 2)
        #expect(ConcurrencyLimit.Settings(minimum: 10, maximum: 20).initial == 10)
        #expect(
            ConcurrencyLimit.Mode(rawValue: "adaptive") == .adaptive
                && ConcurrencyLimit.Mode(rawValue: "fixed") == .fixed)
    }

    // MARK: Simulations

    /// A deterministic event loop: the caller keeps `limit` calls in flight (a full run), each
    /// call's latency and answer decided by the concurrency it started at. Returns the limit after
    /// each sample and the chats per second (batches of 50).
    struct Simulation {
        var latency: (_ inFlight: Int, _ random: inout SeededRandom) -> Double
        var overloaded: (_ inFlight: Int) -> Bool = { _ in false }

        func run(_ limiter: inout ConcurrencyLimit, samples: Int, seed: UInt64 = 1) -> (
            limits: [Int], chatsPerSecond: Double
        ) {
            var random = SeededRandom(seed: seed)
            var now = 0.0
            var flights: [(end: Double, latency: Double, inFlight: Int, overloaded: Bool)] = []
            var limits: [Int] = []
            while limits.count < samples {
                while flights.count < limiter.limit {
                    let inFlight = flights.count + 1
                    let overloaded = overloaded(inFlight)
                    let latency = overloaded ? 1 : latency(inFlight, &random)
                    flights.append((now + latency, latency, inFlight, overloaded))
                }
                var first = 0
                for index in flights.indices where flights[index].end < flights[first].end { first = index }
                let call = flights.remove(at: first)
                now = call.end
                limiter.record(
                    call.overloaded ? .overloaded : .answered(latency: ms(call.latency)), inFlight: call.inFlight)
                limits.append(limiter.limit)
            }
            return (limits, Double(samples) * 50 / (now / 1000))
        }

        func fixed(_ inFlight: Int, samples: Int) -> Double {
            var limiter = ConcurrencyLimit(settings: .init(mode: .fixed, maximum: inFlight))
            return run(&limiter, samples: samples).chatsPerSecond
        }
    }

    @Test func aFixed50msUpstreamWithoutACapacityLimitTakesTheLimitToTheMaximumWithin200Samples() throws {
        var limiter = Self.adaptive(initial: 4)
        let (limits, _) = Simulation(latency: { _, _ in 50 }).run(&limiter, samples: 2_000)
        let first = try #require(limits.firstIndex(of: 64))
        #expect(first < 200)
        #expect(limits[first...].allSatisfy { $0 == 64 })
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func aNoisy50msUpstreamGetsAtLeast80PercentOfTheBestFixedSetting(seed: UInt64) {
        let uniform = Simulation(latency: { _, random in 40 + Double(random.next() % 2_001) / 100 })
        // About normal, standard deviation 10 ms (a sum of four uniforms).
        let bell = Simulation(latency: { _, random in
            50 + (0..<4).map { _ in Double(random.next() % 10_001) / 10_000 - 0.5 }.reduce(0, +) * 17.3
        })
        for simulation in [uniform, bell] {
            var limiter = ConcurrencyLimit(settings: .init(maximum: 64))
            let adaptive = simulation.run(&limiter, samples: 2_000, seed: seed).chatsPerSecond
            let best = [4, 8, 16, 32, 64].map { simulation.fixed($0, samples: 2_000) }.max() ?? 0
            #expect(adaptive >= 0.8 * best, "\(adaptive) chats/s against \(best)")
        }
    }

    @Test(arguments: [4, 8, 16, 24])
    func anUpstreamOfCapacityCSettlesTheLimitBetweenHalfAndTwiceC(capacity: Int) {
        // Latency grows with concurrency beyond C; beyond 2C upstream answers 429.
        let simulation = Simulation(
            latency: { inFlight, _ in 50 * max(1, Double(inFlight) / Double(capacity)) },
            overloaded: { $0 > 2 * capacity })
        var limiter = Self.adaptive(initial: 4)
        let (limits, chatsPerSecond) = simulation.run(&limiter, samples: 4_000)
        let settled = limits[400...]
        #expect(
            settled.allSatisfy { (capacity / 2)...(2 * capacity) ~= $0 },
            "\(settled.min() ?? 0)...\(settled.max() ?? 0)")
        let mean = Double(settled.reduce(0, +)) / Double(settled.count)
        #expect(mean >= Double(capacity) && mean <= 1.75 * Double(capacity))
        #expect(chatsPerSecond >= 0.9 * Double(capacity) * 1_000) // C calls per 50 ms, 50 chats each
    }

    @Test func anUpstreamThatGetsSlowerForGoodIsLearnedAgain() {
        var limiter = Self.adaptive(initial: 4)
        _ = Simulation(latency: { _, _ in 50 }).run(&limiter, samples: 500)
        #expect(limiter.limit == 64)
        let (limits, _) = Simulation(latency: { _, _ in 150 }).run(&limiter, samples: 3_000)
        #expect(limiter.baseline == Self.ms(150))
        let lastBelow = limits.lastIndex { $0 < 64 } ?? 0
        #expect(lastBelow < 1_000)
    }
}
