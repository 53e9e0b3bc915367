extension UpstreamClient {
    /// How hard the client tries, and when it stops trying.
    public struct Settings: Sendable, Hashable {
        /// Upper bound for one call, retries and waits included (PARTICIPANTS_MAX_API_TIMEOUT).
        public var maxCallDuration: Duration
        /// Upper bound for one attempt; never beyond what is left of the call's deadline.
        public var perAttemptTimeout: Duration
        /// Attempts per call, the first included.
        public var maxAttempts: Int
        /// Waits between attempts when upstream gave no `Retry-After`.
        public var backoff: Backoff
        /// Consecutive failed calls that open the circuit breaker.
        public var breakerFailureThreshold: Int
        /// How long an open breaker refuses calls before it lets one probe through.
        public var breakerOpenDuration: Duration
        /// Keep-alive connections to upstream at most; calls queue beyond.
        public var maxConnections: Int

        /// - Parameters:
        ///   - perAttemptTimeout: nil for `min(maxCallDuration, 10s)`; capped at `maxCallDuration`.
        /// - Precondition: durations positive, counts at least 1.
        public init(
            maxCallDuration: Duration = .seconds(30),
            perAttemptTimeout: Duration? = nil,
            maxAttempts: Int = 3,
            backoff: Backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2)),
            breakerFailureThreshold: Int = 5,
            breakerOpenDuration: Duration = .seconds(10),
            maxConnections: Int = 8
        ) {
            precondition(maxCallDuration > .zero, "maxCallDuration must be positive")
            precondition(perAttemptTimeout.map { $0 > .zero } ?? true, "perAttemptTimeout must be positive")
            precondition(maxAttempts >= 1, "maxAttempts must be at least 1")
            precondition(breakerFailureThreshold >= 1, "breakerFailureThreshold must be at least 1")
            precondition(breakerOpenDuration > .zero, "breakerOpenDuration must be positive")
            precondition(maxConnections >= 1, "maxConnections must be at least 1")
            self.maxCallDuration = maxCallDuration
            self.perAttemptTimeout = min(perAttemptTimeout ?? .seconds(10), maxCallDuration)
            self.maxAttempts = maxAttempts
            self.backoff = backoff
            self.breakerFailureThreshold = breakerFailureThreshold
            self.breakerOpenDuration = breakerOpenDuration
            self.maxConnections = maxConnections
        }
    }
}
