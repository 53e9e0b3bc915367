/// The Redis supervisor's state machine (DESIGN §4) as a pure value: no I/O, no clock reads, no
/// randomness of its own. The actor feeds it events with the current time and a random number
/// generator, and carries out the actions it returns.
///
/// ```
/// connecting      --connected-->              ready
/// connecting      --connectFailed-->          reconnecting(1)   retry after backoff(1)
/// ready           --connectionLost-->         reconnecting(1)   connect at once (unavailable if max = 0)
/// reconnecting(n) --retryDue-->               reconnecting(n)   connect
/// reconnecting(n) --connected-->              ready
/// reconnecting(n) --connectFailed, n < max--> reconnecting(n+1) retry after backoff(n)
/// reconnecting(n) --connectFailed, n >= max-> unavailable       probe after the health interval
/// unavailable     --probeDue-->               unavailable       connect
/// unavailable     --connected-->              ready
/// unavailable     --connectFailed-->          unavailable       probe after the health interval
/// any             --shutdown-->               stopped           close the connection
/// ```
/// Any other (state, event) pair cannot happen when the actor is correct (it cancels its timers
/// and ignores events of superseded connections); ``handle(_:now:random:)`` returns
/// ``Outcome/ignored`` for them so the actor can log them instead of crashing the service.
public struct SupervisorStateMachine: Sendable {
    /// How hard and how often to retry.
    public struct Policy: Sendable, Equatable {
        /// Reconnect attempts before `unavailable` (REDIS_MAX_RETRIES); 0 goes straight to it.
        public var maxRetries: Int
        /// Backoff between reconnect attempts (REDIS_RETRY_DELAY doubling, capped).
        public var backoff: Backoff
        /// Probe period while unavailable (REDIS_HEALTH_CHECK_INTERVAL).
        public var probeInterval: Duration

        public init(maxRetries: Int, backoff: Backoff, probeInterval: Duration) {
            self.maxRetries = maxRetries
            self.backoff = backoff
            self.probeInterval = probeInterval
        }
    }

    /// What happened.
    public enum Event: Sendable, Hashable {
        /// A connection attempt succeeded.
        case connected
        /// A connection attempt failed.
        case connectFailed
        /// The live connection broke: disconnect, command timeout or failed PING.
        case connectionLost
        /// The backoff before the next reconnect attempt elapsed.
        case retryDue
        /// The probe interval while unavailable elapsed.
        case probeDue
        /// The service is shutting down.
        case shutdown
    }

    /// What the actor must do next.
    public enum Action: Sendable, Hashable {
        /// Start a connection attempt now.
        case connect
        /// Fire ``Event/retryDue`` after the delay.
        case scheduleRetry(after: Duration)
        /// Fire ``Event/probeDue`` after the delay.
        case scheduleProbe(after: Duration)
        /// Close the connection and cancel every timer.
        case closeConnection
    }

    /// The result of one event.
    public enum Outcome: Sendable, Hashable {
        /// The state changed (or stayed, for attempts inside the same state) and these actions follow.
        case transition(from: RedisState, to: RedisState, actions: [Action])
        /// The event cannot happen in this state; nothing changed.
        case ignored(state: RedisState, event: Event)

        /// The actions to carry out (none when ignored).
        public var actions: [Action] {
            if case .transition(_, _, let actions) = self { return actions }
            return []
        }
    }

    public let policy: Policy
    /// The current state.
    public private(set) var state: RedisState = .connecting
    /// When the current state's name last changed: "degraded since" for `/health`.
    public private(set) var since: ContinuousClock.Instant

    /// Starts in `connecting`; the actor's first action is to connect.
    public init(policy: Policy, now: ContinuousClock.Instant) {
        self.policy = policy
        self.since = now
    }

    /// The one transition function.
    public mutating func handle(
        _ event: Event, now: ContinuousClock.Instant, random: inout some RandomNumberGenerator
    ) -> Outcome {
        let from = state
        let next: (state: RedisState, actions: [Action])
        switch (state, event) {
        case (.stopped, _):
            return .ignored(state: state, event: event)
        case (_, .shutdown):
            next = (.stopped, [.closeConnection])

        case (.connecting, .connected), (.reconnecting, .connected), (.unavailable, .connected):
            next = (.ready, [])
        case (.connecting, .connectFailed):
            next = failedAttempt(1, random: &random)
        case (.ready, .connectionLost):
            // A live connection that drops is usually a blip: the first attempt waits nothing.
            next = policy.maxRetries > 0 ? (.reconnecting(attempt: 1), [.connect]) : (.unavailable, [.connect])
        case (.reconnecting(let attempt), .retryDue):
            next = (.reconnecting(attempt: attempt), [.connect])
        case (.reconnecting(let attempt), .connectFailed):
            next = failedAttempt(attempt + 1, random: &random)
        case (.unavailable, .probeDue):
            next = (.unavailable, [.connect])
        case (.unavailable, .connectFailed):
            next = (.unavailable, [.scheduleProbe(after: policy.probeInterval)])

        case (.connecting, .connectionLost), (.connecting, .retryDue), (.connecting, .probeDue),
            (.ready, .connected), (.ready, .connectFailed), (.ready, .retryDue), (.ready, .probeDue),
            (.reconnecting, .connectionLost), (.reconnecting, .probeDue),
            (.unavailable, .connectionLost), (.unavailable, .retryDue):
            return .ignored(state: state, event: event)
        }
        if next.state.name != from.name { since = now }
        state = next.state
        return .transition(from: from, to: next.state, actions: next.actions)
    }

    /// After a failed attempt: wait and try attempt `nextAttempt`, or give up to probing.
    private func failedAttempt(
        _ nextAttempt: Int, random: inout some RandomNumberGenerator
    ) -> (state: RedisState, actions: [Action]) {
        guard nextAttempt <= policy.maxRetries else {
            return (.unavailable, [.scheduleProbe(after: policy.probeInterval)])
        }
        // The wait before attempt n is backoff(n - 1): attempt 2 waits the first step.
        let delay = policy.backoff.delay(attempt: max(1, nextAttempt - 1), random: &random)
        return (.reconnecting(attempt: nextAttempt), [.scheduleRetry(after: delay)])
    }
}
