public import ChatRuntime
public import Foundation

/// When an upstream call tries again, and when it gives up: the pure half of ``UpstreamClient``,
/// with no I/O and no clock, so every rule is unit-tested on its own.
///
/// Rules, for one failed attempt:
/// - A failure that retrying cannot fix (401/403, other 4xx, a malformed body, a closed client)
///   ends the call at once.
/// - A transient failure (timeout, refused or dropped connection, 5xx, 429) is retried while
///   attempts remain (`maxAttempts` counts the first one) and the wait fits in what is left of
///   the call's deadline.
/// - The wait is the answer's `Retry-After` when it gave one (429, 503), else the backoff for
///   this attempt with jitter. A `Retry-After` longer than the time left ends the call at once
///   (`rateLimited` for a 429): the call is never slept past its deadline.
public struct UpstreamRetryPolicy: Sendable, Hashable {
    /// Attempts per call, the first included; at least 1.
    public var maxAttempts: Int
    /// Waits between attempts when upstream did not say how long.
    public var backoff: Backoff

    public init(maxAttempts: Int, backoff: Backoff) {
        precondition(maxAttempts >= 1, "UpstreamRetryPolicy needs at least one attempt")
        self.maxAttempts = maxAttempts
        self.backoff = backoff
    }

    /// One failed attempt, classified.
    public struct Failure: Sendable, Hashable {
        /// The error the call ends with if this attempt is its last.
        public var error: UpstreamError
        /// Whether another attempt may succeed.
        public var isRetryable: Bool
        /// How long upstream asked us to wait (`Retry-After`), when it did.
        public var retryAfter: Duration?

        public init(error: UpstreamError, isRetryable: Bool, retryAfter: Duration? = nil) {
            self.error = error
            self.isRetryable = isRetryable
            self.retryAfter = retryAfter
        }
    }

    /// What to do after a failed attempt.
    public enum Decision: Sendable, Hashable {
        /// Wait this long, then try again.
        case retry(after: Duration)
        /// End the call with this error.
        case giveUp(UpstreamError)
    }

    /// The decision after attempt number `attempt` (1-based) failed with `failure`, with
    /// `remaining` left until the call's deadline.
    public func decide(
        after failure: Failure, attempt: Int, remaining: Duration, random: inout some RandomNumberGenerator
    ) -> Decision {
        guard failure.isRetryable else { return .giveUp(failure.error) }
        guard attempt < maxAttempts else {
            return .giveUp(failure.error.appending("after \(attempt) attempts"))
        }
        let wait = failure.retryAfter ?? backoff.delay(attempt: attempt, random: &random)
        guard wait < remaining else {
            let reason =
                failure.retryAfter == nil
                ? "no time left for attempt \(attempt + 1) within the call's deadline"
                : "Retry-After \(formatDuration(wait)) exceeds the \(formatDuration(max(remaining, .zero).truncatedToMilliseconds)) left"
            return .giveUp(failure.error.appending(reason))
        }
        return .retry(after: wait)
    }

    /// Classifies an answer that is neither a success nor a 404 the call accepts.
    public static func classify(status: Int, headers: HTTPHeaders, now: Date = Date()) -> Failure {
        let retryAfter = headers["Retry-After"].flatMap { parseRetryAfter($0, now: now) }
        switch status {
        case 429:
            return Failure(
                error: UpstreamError(code: .rateLimited, message: "429 Too Many Requests", status: status),
                isRetryable: true, retryAfter: retryAfter)
        case 401, 403:
            return Failure(
                error: UpstreamError(
                    code: .unauthorized, message: "\(status): check PARTICIPANTS_API_TOKEN", status: status),
                isRetryable: false)
        case 500...599:
            return Failure(
                error: UpstreamError(code: .server, message: "\(status) from upstream", status: status),
                isRetryable: true, retryAfter: status == 503 ? retryAfter : nil)
        default:
            return Failure(
                error: UpstreamError(code: .rejected, message: "unexpected status \(status)", status: status),
                isRetryable: false)
        }
    }

    /// Classifies a request that got no answer.
    public static func classify(_ error: HTTPClientError) -> Failure {
        switch error.code {
        case .timeout:
            Failure(
                error: UpstreamError(code: .timeout, message: "no answer in time: \(error.message)"), isRetryable: true)
        case .connectFailed, .connectionClosed:
            Failure(error: UpstreamError(code: .connection, message: error.message), isRetryable: true)
        case .nameResolutionFailed:
            Failure(error: UpstreamError(code: .dns, message: error.message), isRetryable: true)
        case .tlsFailed:
            // The same certificate would come back.
            Failure(error: UpstreamError(code: .tls, message: error.message), isRetryable: false)
        case .invalidResponse:
            // Not HTTP, or over the size limit: the same bytes would come back.
            Failure(error: UpstreamError(code: .malformed, message: error.message), isRetryable: false)
        case .closed:
            Failure(error: UpstreamError(code: .connection, message: error.message), isRetryable: false)
        case .invalidURL:
            Failure(error: UpstreamError(code: .rejected, message: error.message), isRetryable: false)
        case .cancelled:
            Failure(error: UpstreamError(code: .timeout, message: "the call was cancelled"), isRetryable: false)
        }
    }
}

extension UpstreamError {
    /// The same error with `detail` added to its message.
    func appending(_ detail: String) -> UpstreamError {
        var copy = self
        copy.message += " (\(detail))"
        return copy
    }
}

extension Duration {
    /// Whole milliseconds, rounded down, so ``formatDuration(_:)`` writes its short form.
    var truncatedToMilliseconds: Duration {
        let (seconds, attoseconds) = components
        return .seconds(seconds) + .milliseconds(attoseconds / 1_000_000_000_000_000)
    }
}
