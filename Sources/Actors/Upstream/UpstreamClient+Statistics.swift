extension UpstreamClient {
    /// The circuit breaker's state, as the `upstream_circuit_state` gauge reports it.
    public enum CircuitState: Int, Sendable, Hashable {
        case closed = 0
        case open = 1
        case halfOpen = 2

        init(_ state: CircuitBreaker.State) {
            switch state {
            case .closed: self = .closed
            case .open: self = .open
            case .halfOpen: self = .halfOpen
            }
        }

        var name: String {
            switch self {
            case .closed: "closed"
            case .open: "open"
            case .halfOpen: "half_open"
            }
        }
    }

    /// Counters since the client was created: what the metrics say, readable without a metrics
    /// backend (tests, the status route).
    public struct Statistics: Sendable, Hashable {
        /// Calls made, those the breaker refused included.
        public var calls = 0
        /// HTTP requests sent (first attempts and retries).
        public var attempts = 0
        /// Attempts that followed a failed one.
        public var retries = 0
        /// Calls that returned a value (a 404 on the single-chat call included).
        public var successes = 0
        /// Single-chat calls that upstream answered with 404.
        public var notFound = 0
        /// Calls that failed, by the error they failed with.
        public var errors: [UpstreamError.Code: Int] = [:]
        /// Chats dropped from batch answers because they broke the contract.
        public var malformedChats = 0
        /// Batch answers that left requested ids out of both `chats` and `not_found`.
        public var partialAnswers = 0
        /// Requested ids those partial answers left out, in total.
        public var missingIDs = 0
        /// Where the breaker stands now.
        public var circuitState: CircuitState = .closed

        public init() {}

        /// Calls that failed with `code`.
        public func errors(_ code: UpstreamError.Code) -> Int { errors[code] ?? 0 }
    }
}
