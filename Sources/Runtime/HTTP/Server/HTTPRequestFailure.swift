/// Why the server answers a request itself, before any route, and closes the connection: the
/// bytes are not a request it serves. Each case has one status and one JSON error body.
enum HTTPRequestFailure: Error, Equatable {
    /// Not HTTP/1.x as RFC 9112 frames it (bad request line, bad header, bad chunk size, both
    /// `Content-Length` and `Transfer-Encoding`, ...): 400.
    case malformed(String)
    /// Request line plus headers over ``HTTPServerLimits/maxHeadersSize``: 400, as the service
    /// always answered it.
    case headersTooLarge
    /// Body over ``HTTPServerLimits/maxBodySize``, declared or (chunked) received: 413.
    case bodyTooLarge
    /// `CONNECT`: the server makes no tunnels. 501.
    case connectNotImplemented
    /// A `Transfer-Encoding` other than `chunked` last: 400. RFC 9112 §6.1 suggests 501, but a
    /// 5xx says the server failed, and here the client sent what no server of ours will read.
    case unsupportedTransferCoding
    /// An `Expect` other than `100-continue`: 417 (RFC 9110 §10.1.1).
    case expectationFailed

    /// The answer, with the service's JSON error body.
    var response: HTTPResponse {
        switch self {
        case .malformed(let reason):
            .error(status: 400, code: "bad_request", message: "malformed request: \(reason)")
        case .headersTooLarge:
            .error(status: 400, code: "headers_too_large", message: "the request line and headers are too large")
        case .bodyTooLarge:
            .error(status: 413, code: "body_too_large", message: "the request body is too large")
        case .connectNotImplemented:
            .error(status: 501, code: "not_implemented", message: "CONNECT is not implemented")
        case .unsupportedTransferCoding:
            .error(
                status: 400, code: "unsupported_transfer_coding", message: "only chunked transfer coding is supported")
        case .expectationFailed:
            .error(status: 417, code: "expectation_failed", message: "only Expect: 100-continue is supported")
        }
    }
}
