import Testing

@testable import Actors

@Suite("SupervisorStateMachine")
struct SupervisorStateMachineTests {
    typealias Machine = SupervisorStateMachine
    typealias Event = Machine.Event
    typealias Action = Machine.Action

    static let maxRetries = 3
    /// No jitter, so backoff delays are exact: 1s, 2s, 4s, capped at 8s.
    static let policy = Machine.Policy(
        maxRetries: maxRetries,
        backoff: Backoff(initial: .seconds(1), maximum: .seconds(8), multiplier: 2, jitter: 0),
        probeInterval: .seconds(30))
    static let t0 = ContinuousClock.now

    static let allEvents: [Event] = [.connected, .connectFailed, .connectionLost, .retryDue, .probeDue, .shutdown]
    static let allStates: [RedisState] = [
        .connecting, .ready, .reconnecting(attempt: 1), .reconnecting(attempt: 2),
        .reconnecting(attempt: maxRetries), .unavailable, .stopped,
    ]

    /// Drives a fresh machine into `state` through legal events only.
    static func machine(in state: RedisState) -> Machine {
        var machine = Machine(policy: policy, now: t0)
        var random = SeededRandom(seed: 1)
        func feed(_ events: [Event]) {
            for event in events { _ = machine.handle(event, now: t0, random: &random) }
        }
        switch state {
        case .connecting: break
        case .ready: feed([.connected])
        case .reconnecting(let attempt):
            feed([.connected, .connectionLost] + Array(repeating: .connectFailed, count: attempt - 1))
        case .unavailable: feed([.connectFailed] + Array(repeating: .connectFailed, count: maxRetries))
        case .stopped: feed([.shutdown])
        }
        #expect(machine.state == state)
        return machine
    }

    /// The whole table: what every event does in every state.
    static func expected(_ state: RedisState, _ event: Event) -> Machine.Outcome {
        let ignored = Machine.Outcome.ignored(state: state, event: event)
        func to(_ next: RedisState, _ actions: [Action]) -> Machine.Outcome {
            .transition(from: state, to: next, actions: actions)
        }
        switch (state, event) {
        case (.stopped, _): return ignored
        case (_, .shutdown): return to(.stopped, [.closeConnection])
        case (.connecting, .connected): return to(.ready, [])
        case (.connecting, .connectFailed): return to(.reconnecting(attempt: 1), [.scheduleRetry(after: .seconds(1))])
        case (.connecting, _): return ignored
        case (.ready, .connectionLost): return to(.reconnecting(attempt: 1), [.connect])
        case (.ready, _): return ignored
        case (.reconnecting(let n), .connected): return to(.ready, []).withFrom(.reconnecting(attempt: n))
        case (.reconnecting(let n), .retryDue): return to(.reconnecting(attempt: n), [.connect])
        case (.reconnecting(let n), .connectFailed) where n < maxRetries:
            let delay = Duration.seconds(1 << (n - 1))
            return to(.reconnecting(attempt: n + 1), [.scheduleRetry(after: delay)])
        case (.reconnecting, .connectFailed): return to(.unavailable, [.scheduleProbe(after: .seconds(30))])
        case (.reconnecting, _): return ignored
        case (.unavailable, .connected): return to(.ready, [])
        case (.unavailable, .probeDue): return to(.unavailable, [.connect])
        case (.unavailable, .connectFailed): return to(.unavailable, [.scheduleProbe(after: .seconds(30))])
        case (.unavailable, _): return ignored
        }
    }

    @Test("every (state, event) pair", arguments: allStates, allEvents)
    func everyTransition(state: RedisState, event: Event) {
        var machine = Self.machine(in: state)
        var random = SeededRandom(seed: 2)
        let outcome = machine.handle(event, now: Self.t0 + .seconds(5), random: &random)
        let expected = Self.expected(state, event)
        #expect(outcome == expected)
        switch expected {
        case .ignored: #expect(machine.state == state)
        case .transition(_, let to, _): #expect(machine.state == to)
        }
    }

    @Test func sinceChangesOnlyWhenTheStateNameChanges() {
        var machine = Self.machine(in: .ready)
        var random = SeededRandom(seed: 3)
        let lost = Self.t0 + .seconds(10)
        _ = machine.handle(.connectionLost, now: lost, random: &random)
        #expect(machine.since == lost)
        _ = machine.handle(.connectFailed, now: lost + .seconds(1), random: &random)
        #expect(machine.state == .reconnecting(attempt: 2))
        #expect(machine.since == lost)
        let back = lost + .seconds(5)
        _ = machine.handle(.connected, now: back, random: &random)
        #expect(machine.since == back)
    }

    @Test func neverGivesUpWhileUnavailable() {
        var machine = Self.machine(in: .unavailable)
        var random = SeededRandom(seed: 4)
        for _ in 0..<100 {
            #expect(machine.handle(.probeDue, now: Self.t0, random: &random).actions == [.connect])
            #expect(
                machine.handle(.connectFailed, now: Self.t0, random: &random).actions == [
                    .scheduleProbe(after: .seconds(30))
                ])
        }
        #expect(machine.state == .unavailable)
    }

    @Test func zeroRetriesGoesStraightToUnavailable() {
        let policy = Machine.Policy(maxRetries: 0, backoff: Self.policy.backoff, probeInterval: .seconds(5))
        var random = SeededRandom(seed: 5)
        var fromStart = Machine(policy: policy, now: Self.t0)
        #expect(
            fromStart.handle(.connectFailed, now: Self.t0, random: &random)
                == .transition(from: .connecting, to: .unavailable, actions: [.scheduleProbe(after: .seconds(5))]))
        var fromReady = Machine(policy: policy, now: Self.t0)
        _ = fromReady.handle(.connected, now: Self.t0, random: &random)
        #expect(
            fromReady.handle(.connectionLost, now: Self.t0, random: &random)
                == .transition(from: .ready, to: .unavailable, actions: [.connect]))
    }

    @Test func backoffIsCappedAndJitteredWithinBounds() {
        let policy = Machine.Policy(
            maxRetries: 20,
            backoff: Backoff(initial: .seconds(1), maximum: .seconds(8), multiplier: 2, jitter: 0.2),
            probeInterval: .seconds(30))
        var machine = Machine(policy: policy, now: Self.t0)
        var random = SeededRandom(seed: 6)
        // The first failure leaves `connecting`; then 20 attempts fail.
        for _ in 0...20 {
            guard case .transition(_, _, let actions) = machine.handle(.connectFailed, now: Self.t0, random: &random)
            else {
                Issue.record("connectFailed was ignored")
                return
            }
            for case .scheduleRetry(let delay) in actions {
                #expect(delay >= .zero && delay <= .seconds(8))
            }
        }
        #expect(machine.state == .unavailable)
    }
}

extension SupervisorStateMachine.Outcome {
    fileprivate func withFrom(_ from: RedisState) -> Self {
        guard case .transition(_, let to, let actions) = self else { return self }
        return .transition(from: from, to: to, actions: actions)
    }
}
