import CLibEvent

/// One outgoing request of an ``HTTPClient``, from `evhttp_make_request` to its single outcome.
///
/// ## What libevent 2.1.12 does with an outgoing request
/// - Response complete: the request callback gets the request, then evhttp frees it.
/// - Connect failed (refused, connect timeout): the callback gets the request with response
///   code 0, for every request queued on that connection, then evhttp frees them.
/// - Any other failure (EOF mid-response, garbage, evhttp's own timeouts): the error callback
///   gets the reason, then the request callback gets NULL; the request is already freed.
/// - `evhttp_cancel_request`: frees the request; the request callback never runs, the error
///   callback may run (with `EVREQ_HTTP_REQUEST_CANCEL`) before it returns. Cancelling the
///   request on the wire resets the connection; the queued ones go out on a new one.
/// - `evhttp_connection_free`: frees the queued requests without any callback.
///
/// Callbacks may also run synchronously inside `evhttp_make_request` and
/// `evhttp_cancel_request`. So: the state leaves `inFlight` before we call into evhttp, every
/// callback checks it, and the callbacks' retain of this object is released only once evhttp
/// can no longer call back.
final class HTTPClientRequest {
    private enum State {
        case created, inFlight, finished
    }

    typealias Completion = (HTTPClientRequest, Result<HTTPClientResponse, HTTPClientError>) -> Void

    let id: UInt64
    let connection: HTTPClientConnection
    private var state: State = .created
    private var request: UnsafeMutablePointer<evhttp_request>?
    private var retainedForCallbacks: Unmanaged<HTTPClientRequest>?
    private var reportedError: evhttp_request_error?
    private var timer: LoopTimer?
    private var completion: Completion?

    init(id: UInt64, connection: HTTPClientConnection, completion: @escaping Completion) {
        self.id = id
        self.connection = connection
        self.completion = completion
    }

    /// Hands the request to evhttp and arms its timeout. The completion may run before this
    /// returns (an immediate connect failure).
    func send(
        loop: EventLoop, method: HTTPMethod, target: String, headers: [(String, String)],
        body: [UInt8]?, timeout: Duration
    ) {
        precondition(state == .created, "a request is sent once")
        let context = Unmanaged.passRetained(self)
        guard
            let request = evhttp_request_new(
                { request, context in
                    guard let context else { return }
                    Unmanaged<HTTPClientRequest>.fromOpaque(context).takeUnretainedValue().responseArrived(request)
                }, context.toOpaque())
        else {
            context.release()
            state = .finished
            complete(.failure(HTTPClientError(code: .connectFailed, message: "evhttp_request_new failed")))
            return
        }
        evhttp_request_set_error_cb(request) { error, context in
            guard let context else { return }
            Unmanaged<HTTPClientRequest>.fromOpaque(context).takeUnretainedValue().reportedError = error
        }
        self.request = request
        retainedForCallbacks = context
        state = .inFlight

        let output = evhttp_request_get_output_headers(request)
        for (name, value) in headers where body == nil || !name.asciiCaseInsensitiveEquals("Content-Length") {
            _ = evhttp_add_header(output, name, value)
        }
        if let body {
            _ = evhttp_add_header(output, "Content-Length", String(body.count))
            if !body.isEmpty {
                let buffer = evhttp_request_get_output_buffer(request)
                body.withUnsafeBytes { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
            }
        }

        let timer = LoopTimer(loop: loop) { [self] in
            abort(HTTPClientError(code: .timeout, message: "no response within \(timeout)"))
        }
        self.timer = timer
        timer.schedule(after: timeout)

        if evhttp_make_request(connection.evcon, request, method.evhttpCommand, target) != 0 {
            // evhttp freed the request (it only fails on allocation) and will not call back.
            guard state == .inFlight else { return }
            self.request = nil
            state = .finished
            releaseCallbacks()
            complete(.failure(HTTPClientError(code: .connectFailed, message: "evhttp_make_request failed")))
        }
    }

    /// Ends the request now with `error` (timeout, task cancelled) and cancels it in evhttp.
    func abort(_ error: HTTPClientError) {
        guard state == .inFlight, let request else { return }
        state = .finished
        self.request = nil
        evhttp_cancel_request(request)
        releaseCallbacks()
        complete(.failure(error))
    }

    /// Ends the request with `error` after its connection was freed: evhttp already freed it
    /// without calling back, so it must not be touched.
    func abandon(_ error: HTTPClientError) {
        guard state == .inFlight else { return }
        state = .finished
        request = nil
        releaseCallbacks()
        complete(.failure(error))
    }

    private func responseArrived(_ response: UnsafeMutablePointer<evhttp_request>?) {
        guard state == .inFlight else { return }
        state = .finished
        request = nil
        let result: Result<HTTPClientResponse, HTTPClientError>
        if let response {
            let status = Int(evhttp_request_get_response_code(response))
            if status == 0 {
                if let reason = connection.tlsFailure() {
                    result = .failure(HTTPClientError(code: .tlsFailed, message: "\(connection.address): \(reason)"))
                } else {
                    result = .failure(
                        HTTPClientError(code: .connectFailed, message: "cannot connect to \(connection.address)"))
                }
            } else {
                result = .success(
                    HTTPClientResponse(
                        status: status, headers: EvhttpMessage.headers(of: response),
                        body: EvhttpMessage.body(of: response)))
            }
        } else if let reason = connection.tlsFailure() {
            result = .failure(HTTPClientError(code: .tlsFailed, message: "\(connection.address): \(reason)"))
        } else {
            result = .failure(Self.error(for: reportedError))
        }
        // evhttp calls nothing more for this request after this callback.
        releaseCallbacks()
        complete(result)
    }

    private func complete(_ result: Result<HTTPClientResponse, HTTPClientError>) {
        timer?.cancel()
        timer = nil
        let completion = self.completion
        self.completion = nil
        completion?(self, result)
    }

    private func releaseCallbacks() {
        retainedForCallbacks?.release()
        retainedForCallbacks = nil
    }

    private static func error(for reported: evhttp_request_error?) -> HTTPClientError {
        switch reported {
        case EVREQ_HTTP_TIMEOUT:
            HTTPClientError(code: .timeout, message: "the connection timed out")
        case EVREQ_HTTP_INVALID_HEADER:
            HTTPClientError(code: .invalidResponse, message: "the response is not valid HTTP")
        case EVREQ_HTTP_DATA_TOO_LONG:
            HTTPClientError(code: .invalidResponse, message: "the response is malformed or too large")
        default:
            HTTPClientError(code: .connectionClosed, message: "the connection closed before the response was complete")
        }
    }
}
