import CLibEvent

/// What a reply says about the connection after it.
enum ConnectionDirective {
    /// HTTP/1.1 keep-alive, the default: no header.
    case keepAlive
    /// An HTTP/1.0 client that asked for keep-alive: `Connection: keep-alive`.
    case keepAliveHTTP10
    /// The server closes after this reply: `Connection: close`.
    case close
}

/// Writes ``HTTPResponse`` values into a connection's output evbuffer as HTTP/1.1 bytes.
///
/// The status line, the headers and (up to ``inlineBodyLimit``) the body are assembled in one
/// scratch array reused for every reply and added to the evbuffer with one copy; a larger body
/// is handed to the evbuffer by reference, without a copy. Loop-confined: one per server.
struct HTTPResponseSerializer {
    /// Bodies up to this size are copied with the head: one `evbuffer_add` beats the reference
    /// bookkeeping for small replies (the common JSON answer is well under it).
    static let inlineBodyLimit = 16 * 1024

    private var scratch: [UInt8] = []
    private var dateHeader = HTTPDateHeader()
    private var dateSecond = ""
    private var dateBytes: [UInt8] = []

    init() {
        scratch.reserveCapacity(Self.inlineBodyLimit + 1024)
    }

    /// Appends `response` to `output`. `omitBody` for HEAD: the length the GET would have, no
    /// body. A `Content-Length` or `Connection` in `response.headers` is ignored (the server
    /// computes both), as is any header whose name or value holds CR or LF (no injection).
    mutating func write(
        _ response: HTTPResponse, omitBody: Bool, connection: ConnectionDirective, to output: OpaquePointer
    ) {
        let status = (100...599).contains(response.status) ? response.status : 500
        scratch.removeAll(keepingCapacity: true)
        append("HTTP/1.1 ")
        appendDecimal(status)
        scratch.append(0x20)
        append(Self.reason(status))
        append("\r\n")
        var hasDate = false
        for (name, value) in response.headers {
            if name.asciiCaseInsensitiveEquals("Content-Length") || name.asciiCaseInsensitiveEquals("Connection")
                || name.isEmpty || Self.hasLineBreak(name) || Self.hasLineBreak(value)
            {
                continue
            }
            if !hasDate && name.asciiCaseInsensitiveEquals("Date") { hasDate = true }
            scratch.append(contentsOf: name.utf8)
            append(": ")
            scratch.append(contentsOf: value.utf8)
            append("\r\n")
        }
        if !hasDate {
            append("Date: ")
            scratch.append(contentsOf: currentDate())
            append("\r\n")
        }
        switch connection {
        case .keepAlive: break
        case .keepAliveHTTP10: append("Connection: keep-alive\r\n")
        case .close: append("Connection: close\r\n")
        }
        // No length and no body where HTTP forbids a body (RFC 9110 §8.6, §15.3.5, §15.4.5).
        let statusAllowsBody = status >= 200 && status != 204 && status != 304
        if statusAllowsBody {
            append("Content-Length: ")
            appendDecimal(response.body.count)
            append("\r\n")
        }
        append("\r\n")
        let sendsBody = statusAllowsBody && !omitBody && !response.body.isEmpty
        if sendsBody && response.body.count <= Self.inlineBodyLimit {
            scratch.append(contentsOf: response.body)
        }
        scratch.withUnsafeBytes { _ = evbuffer_add(output, $0.baseAddress, $0.count) }
        if sendsBody && response.body.count > Self.inlineBodyLimit {
            Self.addByReference(response.body, to: output)
        }
    }

    /// The interim answer to `Expect: 100-continue`.
    static func writeContinue(to output: OpaquePointer) {
        let line: StaticString = "HTTP/1.1 100 Continue\r\n\r\n"
        _ = evbuffer_add(output, line.utf8Start, line.utf8CodeUnitCount)
    }

    // MARK: Helpers

    private mutating func currentDate() -> [UInt8] {
        let value = dateHeader.current()
        if value != dateSecond {
            dateSecond = value
            dateBytes = Array(value.utf8)
        }
        return dateBytes
    }

    private mutating func append(_ text: StaticString) {
        scratch.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// `value` (not negative) in decimal, most significant digit first, without a String.
    private mutating func appendDecimal(_ value: Int) {
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        while divisor > 0 {
            scratch.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            divisor /= 10
        }
    }

    private static func hasLineBreak(_ text: String) -> Bool {
        text.utf8.contains { $0 == 0x0D || $0 == 0x0A }
    }

    /// Lends `body` to the evbuffer without a copy: a retained box keeps the array's storage
    /// alive until the evbuffer has written it and calls the cleanup.
    private static func addByReference(_ body: [UInt8], to output: OpaquePointer) {
        let box = Unmanaged.passRetained(BodyBox(body))
        // The box's array is never mutated, so its storage stays where it is until released.
        let added = box.takeUnretainedValue().bytes.withUnsafeBytes { bytes in
            evbuffer_add_reference(
                output, bytes.baseAddress, bytes.count,
                { _, _, context in
                    guard let context else { return }
                    Unmanaged<BodyBox>.fromOpaque(context).release()
                }, box.toOpaque())
        }
        if added != 0 {
            box.release()
            body.withUnsafeBytes { _ = evbuffer_add(output, $0.baseAddress, $0.count) }
        }
    }

    /// The reason phrase of `status` (RFC 9110 §15); clients ignore it, but it must be there.
    static func reason(_ status: Int) -> StaticString {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 203: "Non-Authoritative Information"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 422: "Unprocessable Content"
        case 425: "Too Early"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Unknown"
        }
    }
}

/// A response body lent to an evbuffer by reference.
private final class BodyBox {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
}
