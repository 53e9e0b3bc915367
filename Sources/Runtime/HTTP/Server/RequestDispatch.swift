extension ServerContext {
    /// Routes a parsed request and answers it into `slot`: at once for a routing error or an
    /// immediate handler's answer (inside the read callback, on the loop thread, no task), or
    /// from the route's handler, run in a task whose executor preference is the loop, so its
    /// reply is written on the loop without a thread hop.
    ///
    /// Errors, in order: a malformed target 400 `bad_request`, an invalid percent-escape in the
    /// path 400 `invalid_path` or in the query 400 `invalid_query`, an unknown path 404
    /// `not_found`, a known path without a route for the method 405 `method_not_allowed` with
    /// `Allow`. A method ``HTTPMethod`` does not model (TRACE, PROPFIND; and `QUERY` or any
    /// other token http-parser does not know, see ``unroutedMethod(_:target:)``) is answered like
    /// one without a route: 405 on a known path, 404 elsewhere.
    func dispatch(_ parsed: ParsedRequest, to slot: ReplySlot, from connection: ServerConnection) {
        guard let (rawPath, rawQuery) = Self.split(target: parsed.target) else {
            slot.respond(.error(status: 400, code: "bad_request", message: "malformed request target"))
            return
        }
        if rawPath == "*" {
            // The asterisk-form (`OPTIONS *`, RFC 9112 §3.2.4) names no resource a route could have.
            slot.respond(.error(status: 404, code: "not_found", message: "no route for *"))
            return
        }
        // Without escapes (nearly always) the path is the raw path.
        let hasEscapes = rawPath.utf8.contains(UInt8(ascii: "%"))
        guard let segments = URLDecoding.pathSegments(rawPath),
            let path = hasEscapes ? URLDecoding.percentDecode(rawPath, plusAsSpace: false) : String(rawPath)
        else {
            slot.respond(
                .error(status: 400, code: "invalid_path", message: "the path is not validly percent-encoded"))
            return
        }
        var query: [String: String] = [:]
        if let rawQuery, !rawQuery.isEmpty {
            guard let parsedQuery = URLDecoding.queryParameters(rawQuery) else {
                slot.respond(
                    .error(status: 400, code: "invalid_query", message: "the query is not validly percent-encoded"))
                return
            }
            query = parsedQuery
        }
        guard let method = parsed.method else {
            slot.respond(
                Self.methodNotRouted(parsed.methodName, path: path, allowed: router.allowedMethods(segments: segments)))
            return
        }

        switch router.resolve(method: method, segments: segments) {
        case .notFound:
            slot.respond(.error(status: 404, code: "not_found", message: "no route for \(path)"))
        case .methodNotAllowed(let allowed):
            slot.respond(Self.methodNotRouted(method.rawValue, path: path, allowed: allowed))
        case .found(let route, let parameters):
            let request = HTTPRequest(
                method: method,
                path: path,
                query: query,
                headers: parsed.headers,
                body: parsed.body,
                pathParameters: parameters,
                remoteAddress: connection.remoteAddress,
                remotePort: connection.remotePort
            )
            if let immediate = route.immediate, let response = immediate(request) {
                slot.respond(response)
                return
            }
            let handler = route.handler
            let loop = loop
            slot.markDeferred()
            Task(executorPreference: loop) {
                let response = await handler(request)
                // The task prefers the loop: its code after the await runs on the loop thread.
                loop.preconditionInLoop()
                slot.handlerFinished(response)
            }
        }
    }

    /// The answer to a method http-parser does not know (`QUERY`): like any method without a
    /// route, 405 with `Allow` on a path that has routes, 404 elsewhere, 400 for a bad target.
    func unroutedMethod(_ method: String, target: String) -> HTTPResponse {
        guard let (rawPath, _) = Self.split(target: target) else {
            return .error(status: 400, code: "bad_request", message: "malformed request target")
        }
        if rawPath == "*" { return .error(status: 404, code: "not_found", message: "no route for *") }
        let hasEscapes = rawPath.utf8.contains(UInt8(ascii: "%"))
        guard let segments = URLDecoding.pathSegments(rawPath),
            let path = hasEscapes ? URLDecoding.percentDecode(rawPath, plusAsSpace: false) : String(rawPath)
        else {
            return .error(status: 400, code: "invalid_path", message: "the path is not validly percent-encoded")
        }
        return Self.methodNotRouted(method, path: path, allowed: router.allowedMethods(segments: segments))
    }

    /// 404 when no route has the path, else 405 with `Allow`.
    private static func methodNotRouted(_ method: String, path: String, allowed: [HTTPMethod]) -> HTTPResponse {
        guard !allowed.isEmpty else {
            return .error(status: 404, code: "not_found", message: "no route for \(path)")
        }
        var response = HTTPResponse.error(
            status: 405, code: "method_not_allowed", message: "\(method) is not allowed on \(path)")
        response.headers.append(("Allow", allowed.map(\.rawValue).joined(separator: ", ")))
        return response
    }

    /// The raw path and query of a request target: origin-form (`/a/b?q`), absolute-form
    /// (`http://host/a/b?q`, RFC 9112 §3.2.2) or `*`. Nil for anything else. A fragment, which
    /// a client should not send, is dropped.
    static func split(target: String) -> (path: Substring, query: Substring?)? {
        // origin-form, nearly every request: found on the UTF-8 bytes (a Substring search walks
        // Characters, which showed in profiles).
        let utf8 = target.utf8
        if utf8.first == UInt8(ascii: "/") {
            let end = utf8.firstIndex(of: UInt8(ascii: "#")) ?? utf8.endIndex
            guard let question = utf8[..<end].firstIndex(of: UInt8(ascii: "?")) else {
                return (target[..<end], nil)
            }
            return (target[..<question], target[utf8.index(after: question)..<end])
        }
        var rest = target[...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        if rest.first != "/" {
            if rest == "*" { return (rest, nil) }
            // absolute-form: scheme "://" authority, then the path (or the query, or nothing).
            guard let colon = rest.firstIndex(of: ":"), colon > rest.startIndex,
                rest[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }),
                rest[colon...].hasPrefix("://")
            else { return nil }
            let authorityAndPath = rest[rest.index(colon, offsetBy: 3)...]
            guard let slash = authorityAndPath.firstIndex(where: { $0 == "/" || $0 == "?" }) else {
                return ("/", nil)
            }
            rest = authorityAndPath[slash...]
            if rest.first == "?" {
                return ("/", rest.dropFirst())
            }
        }
        guard let question = rest.firstIndex(of: "?") else { return (rest, nil) }
        return (rest[..<question], rest[rest.index(after: question)...])
    }
}
