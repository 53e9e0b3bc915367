/// The upstream participants API (DESIGN §5) as the participants layer sees it.
/// ``UpstreamClient`` is the real implementation over HTTP.
public protocol ParticipantsUpstream: Sendable {
    /// One chat's participants; nil when upstream answers 404 (unknown chat).
    func participants(of chat: ChatID) async throws(UpstreamError) -> UpstreamChat?
    /// Up to the batch size of chats in one call; unknown ids come back in `notFound`.
    func batchGet(_ chats: [ChatID]) async throws(UpstreamError) -> BatchGetResponse
    /// One page of every chat id, for the daily full refresh; `pageToken` nil for the first page.
    func listChats(pageSize: Int, pageToken: String?) async throws(UpstreamError) -> ChatListPage
}

/// Why an upstream call failed, after the client's own retries.
public struct UpstreamError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// PARTICIPANTS_MAX_API_TIMEOUT passed (retries included).
        case timeout
        /// Connection refused, reset or closed mid-answer.
        case connection
        /// The upstream's host name could not be resolved (no address, or no answer in time).
        case dns
        /// The TLS handshake failed or upstream's certificate did not verify. Never retried,
        /// and never followed by a plain-HTTP attempt.
        case tls
        /// A 5xx answer, after retries.
        case server
        /// 429 past the call's deadline, or too often.
        case rateLimited
        /// A body that is not the contract's JSON: counted, logged, never cached.
        case malformed
        /// The circuit breaker is open: upstream failed too often, calls are not even tried.
        case circuitOpen
        /// 401 or 403: our token is wrong; retrying cannot help.
        case unauthorized
        /// Another 4xx that retrying cannot fix.
        case rejected
    }

    public var code: Code
    public var message: String
    /// The HTTP status, when there was one.
    public var status: Int?

    public init(code: Code, message: String, status: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
    }

    public var description: String { "upstream \(code.rawValue): \(message)" }
}
