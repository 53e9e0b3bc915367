// The supervisor's pure transition function, through a whole outage: ready, lost, the retries,
// unavailable, probes, back to ready.
import Actors
import Benchmark

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2))

    let policy = SupervisorStateMachine.Policy(
        maxRetries: 5, backoff: Backoff(initial: .seconds(1), maximum: .seconds(30)), probeInterval: .seconds(30))
    let outage: [SupervisorStateMachine.Event] =
        [.connected, .connectionLost] + Array(repeating: .connectFailed, count: 6)
        + [.probeDue, .connectFailed, .probeDue, .connected]

    Benchmark("SupervisorStateMachine.handle, one outage (\(outage.count) events)") { benchmark in
        var random = SplitMix(seed: 42)
        let now = ContinuousClock.now
        for _ in benchmark.scaledIterations {
            var machine = SupervisorStateMachine(policy: policy, now: now)
            for event in outage { blackHole(machine.handle(event, now: now, random: &random)) }
        }
    }
    Benchmark("SupervisorStateMachine.handle, ignored event") { benchmark in
        var random = SplitMix(seed: 42)
        let now = ContinuousClock.now
        var machine = SupervisorStateMachine(policy: policy, now: now)
        _ = machine.handle(.connected, now: now, random: &random)
        for _ in benchmark.scaledIterations { blackHole(machine.handle(.probeDue, now: now, random: &random)) }
    }
}

/// A deterministic generator, so every run computes the same backoffs.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
