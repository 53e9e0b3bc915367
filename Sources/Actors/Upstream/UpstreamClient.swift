public import ChatRuntime
import Foundation
public import Logging
public import Metrics

/// The upstream participants API (DESIGN §5) over HTTP: ``ParticipantsUpstream`` on an
/// ``HTTPClient`` with keep-alive connections, on the event loop.
///
/// Every call:
/// 1. asks the circuit breaker; an open breaker fails the call with `circuitOpen` at once,
///    without touching the network;
/// 2. makes attempts until one succeeds, ``UpstreamRetryPolicy`` gives up, or
///    ``Settings/maxCallDuration`` passes; each attempt is bounded by
///    ``Settings/perAttemptTimeout`` and never outlives the call's deadline;
/// 3. reports its outcome to the breaker, the metrics (``UpstreamMetrics``) and
///    ``statistics``, and logs a failure once.
///
/// What counts against the breaker: timeouts, connection failures, 5xx and 429 after retries,
/// and bodies that are not JSON at all (a proxy's HTML page, a truncated body: a sick
/// upstream). Answers that show upstream is up count as healthy: success, 404, 401/403 and
/// other 4xx (our request or token is wrong, hammering is not the issue), and a JSON body with
/// contract violations (a bad record; it still fails the call with `malformed`, but must not
/// cut off every other chat). A cancelled call reports nothing.
///
/// Malformed answers are never retried (the same bytes would come back) and never cached by
/// callers: they surface as ``UpstreamError/Code/malformed``. In batch answers, each chat is
/// checked on its own: a malformed chat lands in ``BatchGetResponse/rejected`` and the rest of
/// the batch is used. Ids a batch answer leaves out of both lists are counted and logged; see
/// ``BatchGetResponse/missingIDs(from:)`` for how callers treat them.
public actor UpstreamClient: ParticipantsUpstream {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    /// The base URL the contract's paths are appended to.
    public nonisolated let baseURL: String
    public nonisolated let settings: Settings

    private let http: HTTPClient
    private let policy: UpstreamRetryPolicy
    private let requestHeaders: [(String, String)]
    private let logger: Logger
    private let clock = ContinuousClock()
    private var breaker: CircuitBreaker
    private var random: ErasedRandom
    private var metrics: UpstreamMetrics
    /// Counters since creation; see ``Statistics``.
    public private(set) var statistics = Statistics()

    /// - Parameters:
    ///   - baseURL: `http[s]://host[:port][/prefix]` (PARTICIPANTS_API_URL).
    ///   - tls: how an `https` upstream is verified (PARTICIPANTS_API_CA_FILE); nil trusts the
    ///     system's CA store.
    ///   - token: sent as `Authorization: Bearer <token>` when non-nil and non-empty
    ///     (PARTICIPANTS_API_TOKEN).
    ///   - random: the jitter source; tests pass a ``SeededRandom``.
    ///   - metricsFactory: the swift-metrics backend; the bootstrapped one unless a test passes
    ///     its own.
    /// - Throws: ``HTTPClientError/Code/invalidURL`` for a base URL the HTTP client cannot use.
    public init(
        loop: EventLoop, baseURL: String, token: String?, tls: TLSClientContext? = nil, settings: Settings = Settings(),
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory, logger: Logger
    ) throws(HTTPClientError) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.baseURL = baseURL
        self.settings = settings
        self.http = try HTTPClient(
            loop: loop, baseURL: baseURL, tls: tls, maxConnections: settings.maxConnections, logger: logger)
        self.policy = UpstreamRetryPolicy(maxAttempts: settings.maxAttempts, backoff: settings.backoff)
        var headers = [("Accept", "application/json")]
        if let token, !token.isEmpty { headers.append(("Authorization", "Bearer \(token)")) }
        self.requestHeaders = headers
        self.breaker = CircuitBreaker(
            failureThreshold: settings.breakerFailureThreshold, openDuration: settings.breakerOpenDuration)
        self.random = ErasedRandom(random)
        self.metrics = UpstreamMetrics(factory: metricsFactory)
        self.logger = logger
    }

    /// Closes the connections; calls in flight fail with `connection`, later calls too.
    public func close() async {
        await http.close()
    }

    // MARK: The contract

    public func participants(of chat: ChatID) async throws(UpstreamError) -> UpstreamChat? {
        // The double optional: a 404 answers the call with `nil`, it is not an error.
        try await perform(
            .participants, method: .GET, path: "/v1/chats/\(chat.rawValue)/participants", body: nil,
            notFoundAnswer: .some(nil)
        ) { body throws(UpstreamDecodingError) in
            try UpstreamDecoder.decodeChat(body)
        }
    }

    public func batchGet(_ chats: [ChatID]) async throws(UpstreamError) -> BatchGetResponse {
        guard !chats.isEmpty else { return BatchGetResponse(chats: [], notFound: []) }
        let response = try await perform(
            .batchGet, method: .POST, path: "/v1/participants:batchGet", body: Self.batchGetBody(chats)
        ) { body throws(UpstreamDecodingError) in
            try UpstreamDecoder.decodeBatchGet(body)
        }
        inspect(response, requested: chats)
        return response
    }

    public func listChats(pageSize: Int, pageToken: String?) async throws(UpstreamError) -> ChatListPage {
        var path = "/v1/chats?page_size=\(pageSize)"
        if let pageToken { path += "&page_token=" + percentEncodedQueryValue(pageToken) }
        let page = try await perform(.listChats, method: .GET, path: path, body: nil) {
            body throws(UpstreamDecodingError) in
            try UpstreamDecoder.decodeChatListPage(body)
        }
        if !page.rejectedIDs.isEmpty {
            logger.warning(
                "upstream listed invalid chat ids; skipped",
                metadata: [
                    "upstream.call": "\(UpstreamCall.listChats.rawValue)",
                    "upstream.rejected_ids": "\(page.rejectedIDs.count)",
                    "upstream.example": "\(String(page.rejectedIDs[0].prefix(64)))",
                ])
        }
        return page
    }

    // MARK: One call

    /// How a finished call weighs on the circuit breaker.
    private enum BreakerVerdict {
        case healthy, failing, unknown
    }

    /// Runs one call: breaker, attempts, retries, bookkeeping.
    /// - Parameter notFoundAnswer: the value a 404 answers with; nil when a 404 is an error.
    private func perform<Value: Sendable>(
        _ call: UpstreamCall, method: HTTPMethod, path: String, body: [UInt8]?, notFoundAnswer: Value? = nil,
        decode: ([UInt8]) throws(UpstreamDecodingError) -> Value
    ) async throws(UpstreamError) -> Value {
        let started = clock.now
        let deadline = started + settings.maxCallDuration
        statistics.calls += 1
        if case .reject(let retryAfter) = breaker.permit(now: started) {
            publishCircuitState()
            let error = UpstreamError(
                code: .circuitOpen,
                message: "upstream failed too often; next try in \(formatDuration(retryAfter.roundedUpToMilliseconds))")
            finish(call, .failure(error), verdict: .unknown, started: started, attempts: 0)
            throw error
        }
        publishCircuitState()

        var headers = requestHeaders
        if body != nil { headers.append(("Content-Type", "application/json")) }
        var attempt = 0
        while true {
            attempt += 1
            let remaining = clock.now.duration(to: deadline)
            let failure: UpstreamRetryPolicy.Failure
            if remaining <= .zero {
                failure = UpstreamRetryPolicy.Failure(
                    error: UpstreamError(
                        code: .timeout,
                        message: "PARTICIPANTS_MAX_API_TIMEOUT (\(formatDuration(settings.maxCallDuration))) passed"),
                    isRetryable: false)
            } else {
                statistics.attempts += 1
                let outcome = await attemptOnce(
                    method: method, path: path, headers: headers, body: body,
                    timeout: min(settings.perAttemptTimeout, remaining), notFoundAnswer: notFoundAnswer, decode: decode)
                switch outcome {
                case .success(let value, let wasNotFound):
                    if wasNotFound { statistics.notFound += 1 }
                    finish(
                        call, .success(()), verdict: .healthy, started: started, attempts: attempt,
                        notFound: wasNotFound)
                    return value
                case .malformed(let decodingError, let status):
                    let error = UpstreamError(code: .malformed, message: decodingError.description, status: status)
                    // Not JSON at all means a sick upstream (or a proxy in between); a contract
                    // violation inside valid JSON is a bad record.
                    finish(
                        call, .failure(error), verdict: decodingError.reason == .notJSON ? .failing : .healthy,
                        started: started, attempts: attempt)
                    throw error
                case .cancelled:
                    let error = UpstreamError(code: .timeout, message: "the call was cancelled")
                    finish(
                        call, .failure(error), verdict: .unknown, started: started, attempts: attempt, cancelled: true)
                    throw error
                case .failed(let failed):
                    failure = failed
                }
            }

            logger.debug("upstream attempt failed", metadata: metadata(call, error: failure.error, attempt: attempt))
            switch policy.decide(
                after: failure, attempt: attempt, remaining: clock.now.duration(to: deadline), random: &random)
            {
            case .giveUp(let error):
                finish(
                    call, .failure(error), verdict: Self.verdict(for: error.code), started: started, attempts: attempt)
                throw error
            case .retry(let wait):
                statistics.retries += 1
                metrics.recordRetry(call)
                do {
                    try await Task.sleep(for: wait)
                } catch {
                    let error = UpstreamError(code: .timeout, message: "the call was cancelled")
                    finish(
                        call, .failure(error), verdict: .unknown, started: started, attempts: attempt, cancelled: true)
                    throw error
                }
            }
        }
    }

    private enum AttemptOutcome<Value> {
        case success(Value, notFound: Bool)
        case malformed(UpstreamDecodingError, status: Int)
        case cancelled
        case failed(UpstreamRetryPolicy.Failure)
    }

    private func attemptOnce<Value>(
        method: HTTPMethod, path: String, headers: [(String, String)], body: [UInt8]?, timeout: Duration,
        notFoundAnswer: Value?, decode: ([UInt8]) throws(UpstreamDecodingError) -> Value
    ) async -> AttemptOutcome<Value> {
        let response: HTTPClientResponse
        do {
            response = try await http.execute(
                method: method, path: path, headers: headers, body: body, timeout: timeout)
        } catch {
            if error.code == .cancelled { return .cancelled }
            return .failed(UpstreamRetryPolicy.classify(error))
        }
        if (200..<300).contains(response.status) {
            do {
                return .success(try decode(response.body), notFound: false)
            } catch {
                return .malformed(error, status: response.status)
            }
        }
        if response.status == 404, let notFoundAnswer {
            return .success(notFoundAnswer, notFound: true)
        }
        return .failed(UpstreamRetryPolicy.classify(status: response.status, headers: response.headers))
    }

    private static func verdict(for code: UpstreamError.Code) -> BreakerVerdict {
        switch code {
        case .timeout, .connection, .dns, .tls, .server, .rateLimited: .failing
        case .unauthorized, .rejected: .healthy
        case .malformed: .failing // not HTTP, or an oversized answer
        case .circuitOpen: .unknown
        }
    }

    // MARK: Bookkeeping

    private func finish(
        _ call: UpstreamCall, _ result: Result<Void, UpstreamError>, verdict: BreakerVerdict,
        started: ContinuousClock.Instant, attempts: Int, notFound: Bool = false, cancelled: Bool = false
    ) {
        let now = clock.now
        switch verdict {
        case .healthy: breaker.recordSuccess(now: now)
        case .failing: breaker.recordFailure(now: now)
        case .unknown: break
        }
        publishCircuitState()

        let outcome: String
        switch result {
        case .success:
            statistics.successes += 1
            outcome = notFound ? "not_found" : "success"
        case .failure(let error):
            statistics.errors[error.code, default: 0] += 1
            metrics.recordError(call, code: error.code)
            outcome = cancelled ? "cancelled" : error.code.rawValue
            if error.code == .circuitOpen {
                logger.debug(
                    "upstream call refused: circuit open", metadata: metadata(call, error: error, attempt: attempts))
            } else if !cancelled {
                var fields = metadata(call, error: error, attempt: attempts)
                fields["upstream.elapsed"] = "\(formatDuration((now - started).roundedUpToMilliseconds))"
                logger.warning("upstream call failed", metadata: fields)
            }
        }
        // Calls the breaker refused took no time worth timing: they would drown the histogram.
        metrics.recordCall(call, outcome: outcome, duration: attempts > 0 ? now - started : nil)
    }

    /// Notes a breaker state change in the statistics, the gauge and the log.
    private func publishCircuitState() {
        let state = CircuitState(breaker.state)
        guard state != statistics.circuitState else { return }
        let previous = statistics.circuitState
        statistics.circuitState = state
        metrics.recordCircuitState(state)
        let fields: Logger.Metadata = [
            "upstream.circuit": "\(state.name)", "upstream.circuit_previous": "\(previous.name)",
        ]
        if state == .open {
            logger.warning(
                "upstream circuit breaker opened: calls refused for \(formatDuration(settings.breakerOpenDuration))",
                metadata: fields)
        } else {
            logger.info("upstream circuit breaker \(state.name)", metadata: fields)
        }
    }

    /// Counts and logs what a batch answer got wrong without failing the call.
    private func inspect(_ response: BatchGetResponse, requested: [ChatID]) {
        if !response.rejected.isEmpty {
            statistics.malformedChats += response.rejected.count
            metrics.recordMalformedChats(response.rejected.count)
            logger.warning(
                "upstream batch answer had malformed chats; dropped",
                metadata: [
                    "upstream.call": "\(UpstreamCall.batchGet.rawValue)",
                    "upstream.malformed_chats": "\(response.rejected.count)",
                    "upstream.example": "\(response.rejected[0])",
                ])
        }
        let missing = response.missingIDs(from: requested)
        if !missing.isEmpty {
            statistics.partialAnswers += 1
            statistics.missingIDs += missing.count
            metrics.recordMissingIDs(missing.count)
            logger.warning(
                "upstream batch answer left chats out",
                metadata: [
                    "upstream.call": "\(UpstreamCall.batchGet.rawValue)", "upstream.missing_ids": "\(missing.count)",
                    "upstream.requested": "\(requested.count)", "upstream.example": "\(missing[0])",
                ])
        }
    }

    private func metadata(_ call: UpstreamCall, error: UpstreamError, attempt: Int) -> Logger.Metadata {
        var fields: Logger.Metadata = [
            "upstream.call": "\(call.rawValue)", "upstream.code": "\(error.code.rawValue)",
            "upstream.attempt": "\(attempt)", "upstream.error": "\(error.message)",
        ]
        if let status = error.status { fields["upstream.status"] = "\(status)" }
        return fields
    }

    private static func batchGetBody(_ chats: [ChatID]) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 16 + chats.count * 24)
        writer.appendRaw(#"{"chat_ids":["#)
        for (index, chat) in chats.enumerated() {
            if index > 0 { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            writer.appendString(chat.rawValue)
        }
        writer.appendRaw("]}")
        return writer.bytes
    }
}

extension Duration {
    /// Whole milliseconds, rounded up, so ``formatDuration(_:)`` writes its short form.
    var roundedUpToMilliseconds: Duration {
        let (seconds, attoseconds) = components
        let perMillisecond: Int64 = 1_000_000_000_000_000
        let milliseconds = attoseconds / perMillisecond + (attoseconds % perMillisecond > 0 ? 1 : 0)
        return .seconds(seconds) + .milliseconds(milliseconds)
    }
}
