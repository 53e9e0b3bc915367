import Testing

@testable import Actors

@Suite("CircuitBreaker")
struct CircuitBreakerTests {
    typealias State = CircuitBreaker.State
    typealias Transition = CircuitBreaker.Transition

    static let t0 = ContinuousClock.now
    static func at(_ seconds: Int) -> ContinuousClock.Instant { t0 + .seconds(seconds) }

    /// threshold 3, open for 10 s; every case below happens at t0 + 100 s.
    static let breaker = CircuitBreaker(failureThreshold: 3, openDuration: .seconds(10))
    static let now = at(100)

    static let table: [(State, CircuitBreaker.Event, Transition)] = [
        // closed
        (
            .closed(consecutiveFailures: 0), .requestPermission,
            Transition(state: .closed(consecutiveFailures: 0), decision: .allow)
        ),
        (
            .closed(consecutiveFailures: 2), .requestPermission,
            Transition(state: .closed(consecutiveFailures: 2), decision: .allow)
        ),
        (.closed(consecutiveFailures: 0), .success, Transition(state: .closed(consecutiveFailures: 0))),
        (.closed(consecutiveFailures: 2), .success, Transition(state: .closed(consecutiveFailures: 0))),
        (.closed(consecutiveFailures: 0), .failure, Transition(state: .closed(consecutiveFailures: 1))),
        (.closed(consecutiveFailures: 1), .failure, Transition(state: .closed(consecutiveFailures: 2))),
        (.closed(consecutiveFailures: 2), .failure, Transition(state: .open(until: at(110)))),
        (.closed(consecutiveFailures: 7), .failure, Transition(state: .open(until: at(110)))),
        // open
        (
            .open(until: at(105)), .requestPermission,
            Transition(state: .open(until: at(105)), decision: .reject(retryAfter: .seconds(5)))
        ),
        (
            .open(until: at(100)), .requestPermission,
            Transition(state: .halfOpen(probeSince: at(100)), decision: .allow)
        ),
        (.open(until: at(50)), .requestPermission, Transition(state: .halfOpen(probeSince: at(100)), decision: .allow)),
        (.open(until: at(105)), .success, Transition(state: .open(until: at(105)))),
        (.open(until: at(50)), .success, Transition(state: .open(until: at(50)))),
        (.open(until: at(105)), .failure, Transition(state: .open(until: at(105)))),
        (.open(until: at(50)), .failure, Transition(state: .open(until: at(50)))),
        // half-open
        (
            .halfOpen(probeSince: at(95)), .requestPermission,
            Transition(state: .halfOpen(probeSince: at(95)), decision: .reject(retryAfter: .seconds(5)))
        ),
        (
            .halfOpen(probeSince: at(90)), .requestPermission,
            Transition(state: .halfOpen(probeSince: at(100)), decision: .allow)
        ),
        (
            .halfOpen(probeSince: at(20)), .requestPermission,
            Transition(state: .halfOpen(probeSince: at(100)), decision: .allow)
        ),
        (.halfOpen(probeSince: at(95)), .success, Transition(state: .closed(consecutiveFailures: 0))),
        (.halfOpen(probeSince: at(20)), .success, Transition(state: .closed(consecutiveFailures: 0))),
        (.halfOpen(probeSince: at(95)), .failure, Transition(state: .open(until: at(110)))),
        (.halfOpen(probeSince: at(20)), .failure, Transition(state: .open(until: at(110)))),
    ]

    @Test(arguments: table)
    func transition(_ state: State, _ event: CircuitBreaker.Event, _ expected: Transition) {
        let actual = Self.breaker.transition(from: state, on: event, now: Self.now)
        #expect(actual == expected)
        #expect((actual.decision != nil) == (event == .requestPermission))
    }

    @Test func tableCoversEveryStateAndEventPair() {
        func kind(_ state: State) -> String {
            switch state {
            case .closed: "closed"
            case .open: "open"
            case .halfOpen: "halfOpen"
            }
        }
        let covered = Set(Self.table.map { "\(kind($0.0))/\($0.1)" })
        let all = Set(
            ["closed", "open", "halfOpen"].flatMap { kind in
                CircuitBreaker.Event.allCases.map { "\(kind)/\($0)" }
            })
        #expect(covered == all)
    }

    @Test func startsClosed() {
        #expect(Self.breaker.state == .closed(consecutiveFailures: 0))
        #expect(Self.breaker.failureThreshold == 3)
        #expect(Self.breaker.openDuration == .seconds(10))
    }

    @Test func opensAfterConsecutiveFailuresOnly() {
        var breaker = CircuitBreaker(failureThreshold: 3, openDuration: .seconds(10))
        breaker.recordFailure(now: Self.at(0))
        breaker.recordFailure(now: Self.at(1))
        breaker.recordSuccess(now: Self.at(2))
        breaker.recordFailure(now: Self.at(3))
        breaker.recordFailure(now: Self.at(4))
        #expect(breaker.permit(now: Self.at(5)) == .allow)
        breaker.recordFailure(now: Self.at(5))
        #expect(breaker.state == .open(until: Self.at(15)))
        #expect(breaker.permit(now: Self.at(6)) == .reject(retryAfter: .seconds(9)))
    }

    @Test func fullCycleThroughHalfOpen() {
        var breaker = CircuitBreaker(failureThreshold: 1, openDuration: .seconds(10))
        breaker.recordFailure(now: Self.at(0))
        #expect(breaker.permit(now: Self.at(9)) == .reject(retryAfter: .seconds(1)))
        // The first caller after the open period is the probe; the rest wait.
        #expect(breaker.permit(now: Self.at(10)) == .allow)
        #expect(breaker.permit(now: Self.at(11)) == .reject(retryAfter: .seconds(9)))
        // The probe fails: open again for the full duration.
        breaker.recordFailure(now: Self.at(12))
        #expect(breaker.state == .open(until: Self.at(22)))
        #expect(breaker.permit(now: Self.at(21)) == .reject(retryAfter: .seconds(1)))
        #expect(breaker.permit(now: Self.at(22)) == .allow)
        // This probe succeeds: closed, everyone may call.
        breaker.recordSuccess(now: Self.at(23))
        #expect(breaker.state == .closed(consecutiveFailures: 0))
        #expect(breaker.permit(now: Self.at(23)) == .allow)
        #expect(breaker.permit(now: Self.at(23)) == .allow)
    }

    @Test func aLostProbeIsReplacedAfterTheOpenDuration() {
        var breaker = CircuitBreaker(failureThreshold: 1, openDuration: .seconds(10))
        breaker.recordFailure(now: Self.at(0))
        #expect(breaker.permit(now: Self.at(10)) == .allow)
        // The probe never reports back.
        #expect(breaker.permit(now: Self.at(19)) == .reject(retryAfter: .seconds(1)))
        #expect(breaker.permit(now: Self.at(20)) == .allow)
        #expect(breaker.state == .halfOpen(probeSince: Self.at(20)))
    }

    @Test func applyReturnsDecisionsOnlyForPermissionRequests() {
        var breaker = CircuitBreaker(failureThreshold: 2, openDuration: .milliseconds(500))
        #expect(breaker.apply(.requestPermission, now: Self.at(0)) == .allow)
        #expect(breaker.apply(.failure, now: Self.at(0)) == nil)
        #expect(breaker.apply(.success, now: Self.at(0)) == nil)
        #expect(breaker.state == .closed(consecutiveFailures: 0))
    }
}
