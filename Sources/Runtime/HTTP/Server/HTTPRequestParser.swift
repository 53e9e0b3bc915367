import CHTTPParser

/// One request as the parser read it, before routing: copied out of the connection's buffer.
struct ParsedRequest {
    /// The method, when ``HTTPMethod`` models it.
    var method: HTTPMethod?
    /// The method's name as sent (`TRACE`, `PROPFIND`): for methods ``HTTPMethod`` does not model.
    var methodName: String
    /// The request target as sent: origin-form (`/a?b`), absolute-form or `*`.
    var target: String
    var headers: HTTPHeaders
    var body: [UInt8]
    /// Whether the connection may carry another request (HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`).
    var keepAlive: Bool
    /// HTTP/1.0: when it asked for keep-alive, its reply must say `Connection: keep-alive`.
    var isHTTP10: Bool
}

/// The joyent/nodejs http-parser (the parser webdis uses), fed the raw bytes of a connection's
/// input buffer, one message at a time.
///
/// ## Spans instead of copies
/// The parser reports the URL and the header names and values as pointers into the bytes it is
/// given, sometimes in pieces when a request arrives over several reads. The connection keeps a
/// request's head (request line and headers) in its input buffer until the head is complete, and
/// always passes the whole undrained buffer (made contiguous), so each piece is kept as an offset
/// from the buffer's start: pieces of one field are adjacent, offsets stay valid across reads,
/// and the head is turned into Swift strings once, when it is complete. The body is copied out as
/// it arrives, so the connection can drain it as it goes.
///
/// Loop-confined, like the connection that owns it.
final class HTTPRequestParser {
    /// What ``parse(_:from:)`` found.
    enum Event {
        /// Every byte was consumed; the message is not complete.
        case needMore
        /// A whole message; the bytes after it belong to the next one.
        case complete(ParsedRequest)
        /// The bytes are not a request this server serves; the connection must answer and close.
        case failed(HTTPRequestFailure)
        /// A request line with a method token http-parser does not know (`QUERY`, `FOO`): the
        /// server answers it as a method without a route, then closes (the parser cannot
        /// frame the rest of such a request).
        case unknownMethod(name: String, target: String)
        /// A method token http-parser does not know, whose request line has not arrived whole:
        /// keep every byte and parse from the start again when more arrive.
        case restart
    }

    private struct Span {
        var start = 0
        var end = 0
        var isEmpty: Bool { end == start }

        mutating func extend(start offset: Int, count: Int) {
            if isEmpty { start = offset }
            end = offset + count
        }
    }

    private let limits: HTTPServerLimits
    private let parser: UnsafeMutablePointer<http_parser>
    private let settings: UnsafeMutablePointer<http_parser_settings>

    /// The start of the buffer being parsed; set only during ``parse(_:from:)``.
    private var base: UnsafePointer<CChar>?
    private var url = Span()
    private var fields: [(name: Span, value: Span)] = []
    private var lastWasValue = false
    private var method: HTTPMethod?
    private var methodName = ""
    private var target = ""
    private var headers = HTTPHeaders()
    private var body: [UInt8] = []
    private var keepAlive = true
    private var isHTTP10 = false
    private var completed: ParsedRequest?
    private var failure: HTTPRequestFailure?
    private var expectsContinue = false

    /// True between the first byte of a request and the end of its headers: the bytes since the
    /// buffer's start must stay in the buffer.
    private(set) var isInHead = false
    /// True after a message's first byte until the message is complete.
    private(set) var isInMessage = false

    init(limits: HTTPServerLimits) {
        self.limits = limits
        parser = .allocate(capacity: 1)
        http_parser_init(parser, HTTP_REQUEST)
        settings = .allocate(capacity: 1)
        http_parser_settings_init(settings)
        settings.pointee.on_message_begin = { parser in
            HTTPRequestParser.of(parser).messageBegan()
        }
        settings.pointee.on_url = { parser, at, length in
            HTTPRequestParser.of(parser).urlPiece(at, length)
        }
        settings.pointee.on_header_field = { parser, at, length in
            HTTPRequestParser.of(parser).fieldPiece(at, length)
        }
        settings.pointee.on_header_value = { parser, at, length in
            HTTPRequestParser.of(parser).valuePiece(at, length)
        }
        settings.pointee.on_headers_complete = { parser in
            HTTPRequestParser.of(parser).headersComplete()
        }
        settings.pointee.on_body = { parser, at, length in
            HTTPRequestParser.of(parser).bodyPiece(at, length)
        }
        settings.pointee.on_message_complete = { parser in
            HTTPRequestParser.of(parser).messageComplete()
        }
        // Unretained: the parser struct is freed in deinit, and only parse() runs the callbacks.
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        parser.deallocate()
        settings.deallocate()
    }

    /// Parses `buffer[offset...]`, the bytes not yet seen; `buffer[..<offset]` are bytes seen
    /// before and kept because they hold the current request's head. Returns how many new bytes
    /// were consumed: for `.complete`, those up to the end of the message.
    func parse(_ buffer: UnsafeRawBufferPointer, from offset: Int) -> (consumed: Int, event: Event) {
        guard let start = buffer.baseAddress, offset < buffer.count else { return (0, .needMore) }
        let bytes = start.assumingMemoryBound(to: CChar.self)
        base = UnsafePointer(bytes)
        let consumed = http_parser_execute(parser, settings, bytes + offset, buffer.count - offset)
        base = nil
        if let message = completed {
            completed = nil
            // Paused in on_message_complete so that one message is handled at a time.
            http_parser_pause(parser, 0)
            return (consumed, .complete(message))
        }
        let error = chat_http_parser_errno(parser)
        if error == HPE_INVALID_METHOD && failure == nil {
            return (consumed, unknownMethod(in: buffer))
        }
        if error != HPE_OK {
            return (consumed, .failed(failure ?? Self.failure(for: error)))
        }
        if isInHead && offset + consumed > limits.maxHeadersSize {
            return (consumed, .failed(.headersTooLarge))
        }
        return (consumed, .needMore)
    }

    /// Whether the client waits for `100 Continue` before it sends the body of the current
    /// request; ``continueSent()`` once it was sent.
    var awaitsContinue: Bool { expectsContinue && isInMessage && !isInHead }

    func continueSent() { expectsContinue = false }

    // MARK: Callbacks

    private static func of(_ parser: UnsafeMutablePointer<http_parser>?) -> HTTPRequestParser {
        Unmanaged<HTTPRequestParser>.fromOpaque(parser!.pointee.data).takeUnretainedValue()
    }

    private func offset(of at: UnsafePointer<CChar>?) -> Int {
        guard let at, let base else { return 0 }
        return at - base
    }

    private func messageBegan() -> Int32 {
        isInHead = true
        isInMessage = true
        url = Span()
        fields.removeAll(keepingCapacity: true)
        lastWasValue = false
        expectsContinue = false
        return 0
    }

    private func urlPiece(_ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        url.extend(start: offset(of: at), count: length)
        return 0
    }

    private func fieldPiece(_ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        if lastWasValue || fields.isEmpty {
            fields.append((Span(), Span()))
            lastWasValue = false
        }
        fields[fields.count - 1].name.extend(start: offset(of: at), count: length)
        return 0
    }

    private func valuePiece(_ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        guard !fields.isEmpty else { return 0 }
        fields[fields.count - 1].value.extend(start: offset(of: at), count: length)
        lastWasValue = true
        return 0
    }

    /// Turns the head into Swift values and checks what can be checked before the body.
    /// A non-zero return stops the parser; `failure` says why.
    private func headersComplete() -> Int32 {
        isInHead = false
        guard let base else { return -1 }
        let headEnd = max(url.end, fields.last.map { max($0.name.end, $0.value.end) } ?? 0)
        if headEnd > limits.maxHeadersSize {
            failure = .headersTooLarge
            return -1
        }
        // http-parser is lenient where RFC 9112 is not: it takes HTTP/0.9 lines (no version),
        // any major version, and runs of spaces between the parts of the request line.
        guard parser.pointee.http_major == 1 else {
            failure = .malformed("HTTP/\(parser.pointee.http_major).\(parser.pointee.http_minor) is not supported")
            return -1
        }
        guard url.start >= 2, base[url.start - 1] == 0x20, base[url.start - 2] != 0x20, base[url.end] == 0x20,
            base[url.end + 1] == 0x48 // "H"
        else {
            failure = .malformed("the request line must be method, target and version, one space apart")
            return -1
        }
        let rawMethod = chat_http_parser_method(parser)
        if rawMethod == HTTP_CONNECT.rawValue {
            failure = .connectNotImplemented
            return -1
        }
        method = HTTPMethod(httpParserMethod: rawMethod)
        methodName = method?.rawValue ?? String(cString: http_method_str(http_method(rawMethod)))
        target = Self.string(base, url, trimming: false)
        headers = HTTPHeaders()
        headers.reserveCapacity(fields.count)
        var expectation: String?
        for field in fields {
            let name = Self.string(base, field.name, trimming: false)
            let value = Self.string(base, field.value, trimming: true)
            if expectation == nil && name.asciiCaseInsensitiveEquals("Expect") { expectation = value }
            headers.add(name: name, value: value)
        }
        keepAlive = http_should_keep_alive(parser) != 0
        isHTTP10 = parser.pointee.http_major == 1 && parser.pointee.http_minor == 0
        body = []

        let chunked = chat_http_parser_is_chunked(parser) != 0
        let declaredLength = chat_http_parser_has_content_length(parser) != 0 ? parser.pointee.content_length : 0
        if !chunked && declaredLength > UInt64(limits.maxBodySize) {
            failure = .bodyTooLarge
            return -1
        }
        if declaredLength > 0 { body.reserveCapacity(Int(declaredLength)) }
        if let expectation {
            guard expectation.asciiCaseInsensitiveEquals("100-continue") else {
                failure = .expectationFailed
                return -1
            }
            // An HTTP/1.0 client cannot expect an interim answer (RFC 9110 §10.1.1).
            expectsContinue = !isHTTP10 && (chunked || declaredLength > 0)
        }
        return 0
    }

    private func bodyPiece(_ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        guard let at else { return 0 }
        // Chunked bodies declare no length up front: they are bounded here.
        if body.count + length > limits.maxBodySize {
            failure = .bodyTooLarge
            return -1
        }
        UnsafeRawPointer(at).withMemoryRebound(to: UInt8.self, capacity: length) {
            body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
        }
        return 0
    }

    private func messageComplete() -> Int32 {
        isInMessage = false
        expectsContinue = false
        completed = ParsedRequest(
            method: method, methodName: methodName, target: target, headers: headers, body: body,
            keepAlive: keepAlive, isHTTP10: isHTTP10)
        headers = HTTPHeaders()
        body = []
        http_parser_pause(parser, 1)
        return 0
    }

    // MARK: Helpers

    private static func string(_ base: UnsafePointer<CChar>, _ span: Span, trimming: Bool) -> String {
        var end = span.end
        if trimming {
            // The parser leaves optional whitespace after a value (RFC 9110 §5.5) in place.
            while end > span.start, base[end - 1] == 0x20 || base[end - 1] == 0x09 { end -= 1 }
        }
        guard end > span.start else { return "" }
        let bytes = UnsafeRawPointer(base + span.start).assumingMemoryBound(to: UInt8.self)
        return String(decoding: UnsafeBufferPointer(start: bytes, count: end - span.start), as: UTF8.self)
    }

    /// The answer to a parser error.
    private static func failure(for error: http_errno) -> HTTPRequestFailure {
        switch error {
        case HPE_HEADER_OVERFLOW:
            return .headersTooLarge
        case HPE_INVALID_TRANSFER_ENCODING:
            return .unsupportedTransferCoding
        default:
            return .malformed(String(cString: http_errno_description(error)))
        }
    }

    /// http-parser stops at the first byte of a method it does not know. When the request
    /// starts (after blank lines) with a token (RFC 9110 §5.6.2) and a space, the method is
    /// one a client may legitimately send (`QUERY`): read its target from the request line, once
    /// the line is whole, so that it can be answered like any method without a route. Anything
    /// else is a malformed request.
    private func unknownMethod(in buffer: UnsafeRawBufferPointer) -> Event {
        // The parser is in its error state; parse from a clean one next time.
        http_parser_init(parser, HTTP_REQUEST)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        isInHead = false
        isInMessage = false
        if buffer.count > limits.maxHeadersSize { return .failed(.headersTooLarge) }
        var index = 0
        while index < buffer.count, buffer[index] == 0x0D || buffer[index] == 0x0A { index += 1 }
        let nameStart = index
        // Methods are short; a longer token is not one.
        while index < buffer.count, index - nameStart < 32, Self.isTokenByte(buffer[index]) { index += 1 }
        if index == buffer.count { return .restart }
        guard index > nameStart, buffer[index] == 0x20 else { return .failed(.malformed("invalid HTTP method")) }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[nameStart..<index]), as: UTF8.self)
        let targetStart = index + 1
        var targetEnd = targetStart
        while targetEnd < buffer.count, buffer[targetEnd] > 0x20, buffer[targetEnd] != 0x7F { targetEnd += 1 }
        guard targetEnd < buffer.count else { return .restart }
        guard targetEnd > targetStart, buffer[targetEnd] == 0x20 else {
            return .failed(.malformed("invalid request line"))
        }
        let target = String(
            decoding: UnsafeRawBufferPointer(rebasing: buffer[targetStart..<targetEnd]), as: UTF8.self)
        return .unknownMethod(name: name, target: target)
    }

    /// tchar (RFC 9110 §5.6.2).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "a")...UInt8(ascii: "z"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

extension HTTPMethod {
    /// The method of an http-parser `enum http_method` value, or nil for one this type does not
    /// model.
    init?(httpParserMethod method: UInt32) {
        switch http_method(method) {
        case HTTP_GET: self = .GET
        case HTTP_HEAD: self = .HEAD
        case HTTP_POST: self = .POST
        case HTTP_PUT: self = .PUT
        case HTTP_DELETE: self = .DELETE
        case HTTP_PATCH: self = .PATCH
        case HTTP_OPTIONS: self = .OPTIONS
        default: return nil
        }
    }
}
