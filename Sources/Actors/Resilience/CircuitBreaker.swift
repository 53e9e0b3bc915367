/// A circuit breaker for calls to a dependency (the upstream API), as a pure state machine.
///
/// ```
/// closed(n) --failure, n+1 == threshold--> open(until: now + openDuration)
/// open(until) --permission asked at or after `until`--> halfOpen(probeSince: now), the one probe
/// halfOpen --success--> closed(0)          halfOpen --failure--> open(until: now + openDuration)
/// ```
/// While open, callers are refused with the time left. While half-open, only the probe runs; if
/// its outcome is never recorded (a cancelled task, a bug), it counts as lost after
/// `openDuration` and the next caller becomes the new probe, so the breaker cannot stick.
///
/// Outcomes carry no ticket, so a late outcome of a call that was let through before the breaker
/// opened counts as the probe's outcome while half-open, and is ignored while open.
///
/// Time is passed in, never read, so every transition is testable without waiting.
public struct CircuitBreaker: Sendable {
    /// The clock readings the breaker works with.
    public typealias Instant = ContinuousClock.Instant

    /// Where the breaker stands.
    public enum State: Sendable, Hashable {
        /// Calls flow; `consecutiveFailures` counts failures since the last success.
        case closed(consecutiveFailures: Int)
        /// Calls are refused until `until`.
        case open(until: Instant)
        /// One probe call was let through at `probeSince`; others are refused until it reports.
        case halfOpen(probeSince: Instant)
    }

    /// What happens to the breaker.
    public enum Event: Sendable, Hashable, CaseIterable {
        /// A caller asks whether it may call the dependency.
        case requestPermission
        /// A call that was let through succeeded.
        case success
        /// A call that was let through failed.
        case failure
    }

    /// The answer to a permission request.
    public enum Decision: Sendable, Hashable {
        /// Go ahead and call.
        case allow
        /// Do not call; the breaker expects to let calls through again after `retryAfter`.
        case reject(retryAfter: Duration)
    }

    /// The result of one event: the next state, and a decision for permission requests.
    public struct Transition: Sendable, Hashable {
        /// The state after the event.
        public var state: State
        /// Non-`nil` exactly when the event was ``Event/requestPermission``.
        public var decision: Decision?

        public init(state: State, decision: Decision? = nil) {
            self.state = state
            self.decision = decision
        }
    }

    /// Consecutive failures that open a closed breaker; at least 1.
    public let failureThreshold: Int
    /// How long the breaker stays open, and how long a probe may take before it counts as lost.
    public let openDuration: Duration
    /// The current state; starts closed.
    public private(set) var state: State

    /// - Precondition: `failureThreshold >= 1`, `openDuration > .zero`.
    public init(failureThreshold: Int, openDuration: Duration) {
        precondition(failureThreshold >= 1, "CircuitBreaker failureThreshold must be at least 1")
        precondition(openDuration > .zero, "CircuitBreaker openDuration must be positive")
        self.failureThreshold = failureThreshold
        self.openDuration = openDuration
        state = .closed(consecutiveFailures: 0)
    }

    /// Asks whether a call may go ahead now. A caller that is allowed must report the outcome
    /// with ``recordSuccess(now:)`` or ``recordFailure(now:)``.
    public mutating func permit(now: Instant) -> Decision {
        guard let decision = apply(.requestPermission, now: now) else {
            preconditionFailure("a permission request always yields a decision")
        }
        return decision
    }

    /// Reports that a permitted call succeeded.
    public mutating func recordSuccess(now: Instant) {
        apply(.success, now: now)
    }

    /// Reports that a permitted call failed.
    public mutating func recordFailure(now: Instant) {
        apply(.failure, now: now)
    }

    /// Feeds one event through ``transition(from:on:now:)`` and keeps the new state.
    @discardableResult
    public mutating func apply(_ event: Event, now: Instant) -> Decision? {
        let next = transition(from: state, on: event, now: now)
        state = next.state
        return next.decision
    }

    /// The one transition function: what `event` at `now` does to `state`. Pure.
    public func transition(from state: State, on event: Event, now: Instant) -> Transition {
        switch (state, event) {
        case (.closed, .requestPermission):
            return Transition(state: state, decision: .allow)
        case (.closed, .success):
            return Transition(state: .closed(consecutiveFailures: 0))
        case (.closed(let failures), .failure):
            let failures = failures + 1
            if failures >= failureThreshold {
                return Transition(state: .open(until: now + openDuration))
            }
            return Transition(state: .closed(consecutiveFailures: failures))

        case (.open(let until), .requestPermission):
            if now >= until {
                return Transition(state: .halfOpen(probeSince: now), decision: .allow)
            }
            return Transition(state: state, decision: .reject(retryAfter: now.duration(to: until)))
        case (.open, .success), (.open, .failure):
            // Late outcomes of calls let through before the breaker opened change nothing.
            return Transition(state: state)

        case (.halfOpen(let probeSince), .requestPermission):
            let probeDeadline = probeSince + openDuration
            if now >= probeDeadline {
                return Transition(state: .halfOpen(probeSince: now), decision: .allow)
            }
            return Transition(state: state, decision: .reject(retryAfter: now.duration(to: probeDeadline)))
        case (.halfOpen, .success):
            return Transition(state: .closed(consecutiveFailures: 0))
        case (.halfOpen, .failure):
            return Transition(state: .open(until: now + openDuration))
        }
    }
}
