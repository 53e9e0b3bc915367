import Metrics

/// The client's swift-metrics instruments, created once per label set.
///
/// - `upstream_requests_total{call,outcome}`: calls by outcome: `success`, `not_found`, an
///   ``UpstreamError/Code`` raw value, or `cancelled`.
/// - `upstream_request_duration_seconds{call}`: whole calls, retries and waits included; not
///   calls the breaker refused.
/// - `upstream_errors_total{call,code}`: failed calls by error code.
/// - `upstream_retries_total{call}`: attempts after the first.
/// - `upstream_malformed_chats_total{call}`: chats dropped from batch answers.
/// - `upstream_missing_ids_total{call}`: ids a batch answer left out of both lists.
/// - `upstream_circuit_state`: 0 closed, 1 open, 2 half-open.
struct UpstreamMetrics {
    private let durations: [UpstreamCall: Metrics.Timer]
    private let retries: [UpstreamCall: Counter]
    private let malformedChats: Counter
    private let missingIDs: Counter
    private let circuitState: Gauge
    private let factory: any MetricsFactory
    private var outcomes: [String: Counter] = [:]
    private var errors: [String: Counter] = [:]

    /// - Parameter factory: where the instruments come from; tests pass their own instead of
    ///   bootstrapping the process-wide metrics system.
    init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        durations = Dictionary(
            uniqueKeysWithValues: UpstreamCall.allCases.map {
                (
                    $0,
                    Metrics.Timer(
                        label: "upstream_request_duration_seconds", dimensions: [("call", $0.rawValue)],
                        factory: factory)
                )
            })
        retries = Dictionary(
            uniqueKeysWithValues: UpstreamCall.allCases.map {
                ($0, Counter(label: "upstream_retries_total", dimensions: [("call", $0.rawValue)], factory: factory))
            })
        let batch = [("call", UpstreamCall.batchGet.rawValue)]
        malformedChats = Counter(label: "upstream_malformed_chats_total", dimensions: batch, factory: factory)
        missingIDs = Counter(label: "upstream_missing_ids_total", dimensions: batch, factory: factory)
        circuitState = Gauge(label: "upstream_circuit_state", factory: factory)
        circuitState.record(UpstreamClient.CircuitState.closed.rawValue)
    }

    /// - Parameter duration: nil for a call that sent no request (refused by the breaker).
    mutating func recordCall(_ call: UpstreamCall, outcome: String, duration: Duration?) {
        if let duration { durations[call]?.recordDuration(duration) }
        counter(in: &outcomes, label: "upstream_requests_total", call: call, key: "outcome", value: outcome).increment()
    }

    mutating func recordError(_ call: UpstreamCall, code: UpstreamError.Code) {
        counter(in: &errors, label: "upstream_errors_total", call: call, key: "code", value: code.rawValue).increment()
    }

    func recordRetry(_ call: UpstreamCall) {
        retries[call]?.increment()
    }

    func recordMalformedChats(_ count: Int) {
        malformedChats.increment(by: Int64(count))
    }

    func recordMissingIDs(_ count: Int) {
        missingIDs.increment(by: Int64(count))
    }

    func recordCircuitState(_ state: UpstreamClient.CircuitState) {
        circuitState.record(state.rawValue)
    }

    private func counter(
        in cache: inout [String: Counter], label: String, call: UpstreamCall, key: String, value: String
    ) -> Counter {
        let cacheKey = call.rawValue + "\u{1F}" + value
        if let existing = cache[cacheKey] { return existing }
        let created = Counter(label: label, dimensions: [("call", call.rawValue), (key, value)], factory: factory)
        cache[cacheKey] = created
        return created
    }
}
