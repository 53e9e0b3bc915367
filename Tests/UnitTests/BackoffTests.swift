import Testing

@testable import Actors

@Suite("Backoff")
struct BackoffTests {
    @Test func seededRandomIsSplitMix64() {
        var random = SeededRandom(seed: 0)
        #expect(random.next() == 0xE220_A839_7B1D_CDAF)
        #expect(random.next() == 0x6E78_9E6A_A1B9_65F4)
        #expect(random.next() == 0x06C4_5D18_8009_454F)
    }

    @Test func seededRandomIsReproducible() {
        var first = SeededRandom(seed: 1234)
        var second = SeededRandom(seed: 1234)
        var other = SeededRandom(seed: 1235)
        let a = (0..<100).map { _ in first.next() }
        #expect(a == (0..<100).map { _ in second.next() })
        #expect(a != (0..<100).map { _ in other.next() })
    }

    @Test func withoutJitterDelaysDoubleFromInitialUpToTheCap() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1), jitter: 0)
        var random = SeededRandom(seed: 1)
        let delays = (1...7).map { backoff.delay(attempt: $0, random: &random) }
        #expect(
            delays == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
                .seconds(1), .seconds(1), .seconds(1),
            ])
        #expect((1...7).map { backoff.baseDelay(attempt: $0) } == delays)
    }

    @Test func attemptsBelowOneCountAsTheFirst() {
        let backoff = Backoff(initial: .seconds(1), maximum: .seconds(30), jitter: 0)
        var random = SeededRandom(seed: 1)
        #expect(backoff.delay(attempt: 0, random: &random) == .seconds(1))
        #expect(backoff.delay(attempt: -5, random: &random) == .seconds(1))
        #expect(backoff.delay(attempt: .min, random: &random) == .seconds(1))
    }

    @Test func hugeAttemptsAndMaximaNeitherTrapNorExceedTheCap() {
        var random = SeededRandom(seed: 9)
        let capped = Backoff(initial: .seconds(1), maximum: .seconds(60))
        #expect(capped.delay(attempt: .max, random: &random) <= .seconds(60))
        #expect(capped.baseDelay(attempt: 10_000) == .seconds(60))
        let unbounded = Backoff(initial: .seconds(1), maximum: .seconds(Int64.max), multiplier: 10, jitter: 0.5)
        let delay = unbounded.delay(attempt: 1_000, random: &random)
        #expect(delay > .seconds(1_000_000))
        #expect(unbounded.baseDelay(attempt: 1_000) > .zero)
    }

    @Test func otherMultipliers() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(10), multiplier: 1.5, jitter: 0)
        #expect(backoff.baseDelay(attempt: 3) == .milliseconds(225))
        let constant = Backoff(initial: .milliseconds(250), maximum: .seconds(10), multiplier: 1, jitter: 0)
        #expect(constant.baseDelay(attempt: 50) == .milliseconds(250))
    }

    @Test(arguments: [0.1, 0.2, 0.5, 1.0])
    func jitterStaysWithinItsBandAndTheCap(_ jitter: Double) {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), jitter: jitter)
        var random = SeededRandom(seed: 42)
        for attempt in 1...8 {
            let base = backoff.baseDelay(attempt: attempt)
            var lowest = Duration.seconds(1000)
            var highest = Duration.zero
            var total = Duration.zero
            let samples = 2000
            for _ in 0..<samples {
                let delay = backoff.delay(attempt: attempt, random: &random)
                #expect(delay >= .zero && delay <= backoff.maximum)
                #expect(delay >= base * (1 - jitter) - .nanoseconds(1))
                #expect(delay <= base * (1 + jitter) + .nanoseconds(1))
                lowest = min(lowest, delay)
                highest = max(highest, delay)
                total += delay
            }
            // The band is actually used, in both directions where the cap allows.
            #expect(lowest < base * (1 - jitter / 2))
            if base * (1 + jitter) <= backoff.maximum {
                #expect(highest > base * (1 + jitter / 2))
                let mean = total / samples
                #expect(mean > base * 0.95 && mean < base * 1.05, "attempt \(attempt): mean \(mean) vs \(base)")
            } else {
                #expect(highest == backoff.maximum)
            }
        }
    }

    @Test func sameSeedSameDelays() {
        let backoff = Backoff(initial: .milliseconds(50), maximum: .seconds(5))
        var first = SeededRandom(seed: 77)
        var second = SeededRandom(seed: 77)
        let a = (1...10).map { backoff.delay(attempt: $0, random: &first) }
        let b = (1...10).map { backoff.delay(attempt: $0, random: &second) }
        #expect(a == b)
        #expect(Set(a).count > 5)
    }

    @Test func zeroInitialMeansNoWait() {
        let backoff = Backoff(initial: .zero, maximum: .seconds(1))
        var random = SeededRandom(seed: 5)
        #expect((1...10).allSatisfy { backoff.delay(attempt: $0, random: &random) == .zero })
    }
}

extension Duration {
    fileprivate static func * (duration: Duration, factor: Double) -> Duration {
        let (seconds, attoseconds) = duration.components
        return .seconds((Double(seconds) + Double(attoseconds) / 1e18) * factor)
    }
}
