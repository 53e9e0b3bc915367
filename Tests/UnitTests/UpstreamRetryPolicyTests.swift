import ChatRuntime
import Foundation
import MetricsTestKit
import Testing

@testable import Actors

@Suite("UpstreamRetryPolicy")
struct UpstreamRetryPolicyTests {
    static let policy = UpstreamRetryPolicy(
        maxAttempts: 3, backoff: Backoff(initial: .milliseconds(100), maximum: .seconds(1), jitter: 0))

    static func decide(_ failure: UpstreamRetryPolicy.Failure, attempt: Int, remaining: Duration)
        -> UpstreamRetryPolicy.Decision
    {
        var random = SeededRandom(seed: 7)
        return policy.decide(after: failure, attempt: attempt, remaining: remaining, random: &random)
    }

    static func code(_ decision: UpstreamRetryPolicy.Decision) -> UpstreamError.Code? {
        if case .giveUp(let error) = decision { return error.code }
        return nil
    }

    @Test func transientFailuresRetryWithBackoffWhileAttemptsRemain() {
        let failure = UpstreamRetryPolicy.classify(status: 503, headers: [:])
        #expect(Self.decide(failure, attempt: 1, remaining: .seconds(10)) == .retry(after: .milliseconds(100)))
        #expect(Self.decide(failure, attempt: 2, remaining: .seconds(10)) == .retry(after: .milliseconds(200)))
        #expect(Self.code(Self.decide(failure, attempt: 3, remaining: .seconds(10))) == .server)
    }

    @Test func neverWaitsPastTheDeadline() {
        let failure = UpstreamRetryPolicy.classify(HTTPClientError(code: .connectFailed, message: "refused"))
        #expect(Self.code(Self.decide(failure, attempt: 1, remaining: .milliseconds(100))) == .connection)
        #expect(Self.decide(failure, attempt: 1, remaining: .milliseconds(101)) == .retry(after: .milliseconds(100)))
    }

    @Test func retryAfterIsHonouredOnlyWhenItFits() {
        let headers: HTTPHeaders = ["Retry-After": "2"]
        let limited = UpstreamRetryPolicy.classify(status: 429, headers: headers)
        #expect(limited.error.code == .rateLimited)
        #expect(limited.retryAfter == .seconds(2))
        #expect(Self.decide(limited, attempt: 1, remaining: .seconds(3)) == .retry(after: .seconds(2)))
        #expect(Self.code(Self.decide(limited, attempt: 1, remaining: .seconds(2))) == .rateLimited)
        #expect(Self.code(Self.decide(limited, attempt: 3, remaining: .seconds(60))) == .rateLimited)
        // 503 may carry Retry-After too; a 429 without one backs off.
        #expect(UpstreamRetryPolicy.classify(status: 503, headers: headers).retryAfter == .seconds(2))
        let bare = UpstreamRetryPolicy.classify(status: 429, headers: [:])
        #expect(Self.decide(bare, attempt: 1, remaining: .seconds(3)) == .retry(after: .milliseconds(100)))
    }

    @Test(arguments: [
        (401, UpstreamError.Code.unauthorized), (403, .unauthorized), (400, .rejected), (404, .rejected),
        (409, .rejected),
        (302, .rejected),
    ])
    func permanentStatusesAreNotRetried(status: Int, code: UpstreamError.Code) {
        let failure = UpstreamRetryPolicy.classify(status: status, headers: [:])
        #expect(!failure.isRetryable)
        #expect(failure.error.status == status)
        #expect(Self.code(Self.decide(failure, attempt: 1, remaining: .seconds(10))) == code)
    }

    @Test func serverErrorsAreRetryable() {
        for status in [500, 502, 503, 504, 599] {
            let failure = UpstreamRetryPolicy.classify(status: status, headers: [:])
            #expect(failure.isRetryable && failure.error.code == .server)
        }
    }

    @Test func transportErrorsMapToCodes() {
        let cases: [(HTTPClientError.Code, UpstreamError.Code, Bool)] = [
            (.timeout, .timeout, true), (.connectFailed, .connection, true), (.connectionClosed, .connection, true),
            (.invalidResponse, .malformed, false), (.closed, .connection, false), (.invalidURL, .rejected, false),
            (.cancelled, .timeout, false),
        ]
        for (input, code, retryable) in cases {
            let failure = UpstreamRetryPolicy.classify(HTTPClientError(code: input, message: "x"))
            #expect(failure.error.code == code, "\(input)")
            #expect(failure.isRetryable == retryable, "\(input)")
        }
    }

    @Test func retryAfterParsesSecondsAndDates() {
        let now = Date(timeIntervalSince1970: 1_445_412_400) // Wed, 21 Oct 2015 07:26:40 GMT
        #expect(parseRetryAfter("0", now: now) == .zero)
        #expect(parseRetryAfter(" 120 ", now: now) == .seconds(120))
        #expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now: now) == .seconds(80))
        #expect(parseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now: now) == .zero)
        for garbage in ["", "soon", "-1", "1.5", "Wed, 21 Oct 2015"] {
            #expect(parseRetryAfter(garbage, now: now) == nil, "\(garbage)")
        }
        #expect(parseRetryAfter("99999999999999999999999", now: now)! > .seconds(1_000_000_000))
    }

    @Test func missingIDsAreThoseInNeitherList() throws {
        let ids = ["a", "b", "c", "d", "b"].map { ChatID(validating: $0)! }
        let chat = UpstreamChat(chatID: ids[0], participants: [], version: 1)
        let bad = UpstreamDecodingError(reason: .wrongType, path: "$.chats[1].version", detail: "x", chatID: "d")
        let response = BatchGetResponse(chats: [chat], notFound: ["c"], rejected: [bad])
        #expect(response.missingIDs(from: ids).map(\.rawValue) == ["b"])
        #expect(BatchGetResponse(chats: [chat], notFound: ["b", "c", "d"]).missingIDs(from: ids).isEmpty)
    }
}

@Suite("UpstreamMetrics")
struct UpstreamMetricsTests {
    @Test func instrumentsCarryTheDocumentedLabels() throws {
        let factory = TestMetrics()
        var metrics = UpstreamMetrics(factory: factory)
        #expect(try factory.expectGauge("upstream_circuit_state").lastValue == 0)

        metrics.recordCall(.batchGet, outcome: "success", duration: .milliseconds(20))
        metrics.recordCall(.batchGet, outcome: "success", duration: .milliseconds(30))
        metrics.recordCall(.participants, outcome: "malformed", duration: .milliseconds(5))
        metrics.recordCall(.batchGet, outcome: "circuitOpen", duration: nil)
        metrics.recordError(.participants, code: .malformed)
        metrics.recordRetry(.listChats)
        metrics.recordMissingIDs(3)
        metrics.recordMalformedChats(2)
        metrics.recordCircuitState(.halfOpen)

        #expect(
            try factory.expectCounter("upstream_requests_total", [("call", "batch_get"), ("outcome", "success")])
                .totalValue == 2)
        #expect(
            try factory.expectCounter(
                "upstream_requests_total", [("call", "get_participants"), ("outcome", "malformed")]
            ).totalValue == 1)
        #expect(
            try factory.expectCounter("upstream_requests_total", [("call", "batch_get"), ("outcome", "circuitOpen")])
                .totalValue == 1)
        #expect(
            try factory.expectCounter("upstream_errors_total", [("call", "get_participants"), ("code", "malformed")])
                .totalValue == 1)
        #expect(
            try factory.expectTimer("upstream_request_duration_seconds", [("call", "batch_get")]).values == [
                20_000_000, 30_000_000,
            ])
        #expect(try factory.expectCounter("upstream_retries_total", [("call", "list_chats")]).totalValue == 1)
        #expect(try factory.expectCounter("upstream_missing_ids_total", [("call", "batch_get")]).totalValue == 3)
        #expect(try factory.expectCounter("upstream_malformed_chats_total", [("call", "batch_get")]).totalValue == 2)
        #expect(try factory.expectGauge("upstream_circuit_state").lastValue == 2)
    }
}
