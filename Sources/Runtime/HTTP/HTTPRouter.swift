/// The outcome of routing one request.
public enum RouteMatch: Sendable {
    /// A route for the path and method, with its `{name}` parameters, percent-decoded.
    case found(HTTPHandler, [String: String])
    /// Routes exist for the path, but none for the method; `allowed` is sorted, for `Allow`.
    case methodNotAllowed(allowed: [HTTPMethod])
    /// No route matches the path.
    case notFound
}

/// A route table: method plus path pattern to handler, with `{name}` path parameters.
///
/// Patterns are absolute paths whose segments are literals or `{name}` (a whole segment).
/// Matching rules:
/// - A literal segment beats a parameter at the same position (`/chats/search` wins over
///   `/chats/{id}` for `/chats/search`); the router backtracks when the literal branch fails.
/// - A parameter matches one non-empty segment; an encoded slash (`%2F`) stays inside it.
/// - One trailing slash is ignored, on patterns and on paths (`/chats/` is `/chats`).
/// - HEAD falls back to the GET route of the path when there is no HEAD route.
/// - Literals compare exactly (case-sensitive), after percent-decoding of the request path.
///
/// Registering the same method and path shape twice, or a malformed pattern, is a programming
/// error and traps.
public struct HTTPRouter: Sendable {
    /// A route's handlers, as the server resolves them.
    struct Route: Sendable {
        let handler: HTTPHandler
        let immediate: HTTPImmediateHandler?
        let parameterNames: [String]
    }

    /// What routing gave the server: ``RouteMatch`` with the immediate handler too.
    enum Resolution: Sendable {
        case found(Route, [String: String])
        case methodNotAllowed(allowed: [HTTPMethod])
        case notFound
    }

    private struct Node: Sendable {
        var literals: [String: Int] = [:]
        var parameter: Int?
        var routes: [HTTPMethod: Route] = [:]
    }

    /// Node 0 is the root; children are indices, which keeps the tree a plain value.
    private var nodes: [Node] = [Node()]

    /// Every route added, as its method and pattern, in the order added: what a published
    /// description of the API must list (docs/openapi.yaml).
    public private(set) var table: [(method: HTTPMethod, pattern: String)] = []

    public init() {}

    /// Adds a route: `router.add(.GET, "/v1/chats/{chat_id}/participants") { request in ... }`.
    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping HTTPHandler) {
        add(method, pattern, immediate: nil, handler: handler)
    }

    /// Adds a route whose requests first go to `immediate`, synchronously in the server's
    /// callback; the ones it declines (nil) go to `handler`. See ``HTTPImmediateHandler``.
    public mutating func add(
        _ method: HTTPMethod, _ pattern: String, immediate: HTTPImmediateHandler?, handler: @escaping HTTPHandler
    ) {
        precondition(pattern.first == "/", "route pattern must start with '/': \(pattern)")
        var body = pattern.dropFirst()
        if body.last == "/" { body = body.dropLast() }
        let segments = body.isEmpty ? [] : body.split(separator: "/", omittingEmptySubsequences: false)
        var nodeIndex = 0
        var parameterNames: [String] = []
        for segment in segments {
            if segment.first == "{" && segment.last == "}" && segment.count > 2 {
                let name = String(segment.dropFirst().dropLast())
                precondition(!name.contains("{") && !name.contains("}"), "malformed parameter in \(pattern)")
                precondition(!parameterNames.contains(name), "parameter '\(name)' repeats in \(pattern)")
                parameterNames.append(name)
                nodeIndex = child(of: nodeIndex, parameter: ())
            } else {
                precondition(!segment.isEmpty, "empty segment in route pattern \(pattern)")
                precondition(!segment.contains("{") && !segment.contains("}"), "malformed segment in \(pattern)")
                nodeIndex = child(of: nodeIndex, literal: String(segment))
            }
        }
        precondition(nodes[nodeIndex].routes[method] == nil, "duplicate route \(method) \(pattern)")
        nodes[nodeIndex].routes[method] = Route(handler: handler, immediate: immediate, parameterNames: parameterNames)
        table.append((method, pattern))
    }

    /// Routes `method` and a raw (percent-encoded, query-free) `path`. A path with an invalid
    /// escape matches nothing; the server answers it with 400 before routing.
    public func match(method: HTTPMethod, path: String) -> RouteMatch {
        guard let segments = URLDecoding.pathSegments(path[...]) else { return .notFound }
        return match(method: method, segments: segments)
    }

    /// Routes `method` and already-decoded path segments.
    func match(method: HTTPMethod, segments: [String]) -> RouteMatch {
        switch resolve(method: method, segments: segments) {
        case .found(let route, let parameters): .found(route.handler, parameters)
        case .methodNotAllowed(let allowed): .methodNotAllowed(allowed: allowed)
        case .notFound: .notFound
        }
    }

    /// Routes `method` and already-decoded path segments, for the server.
    func resolve(method: HTTPMethod, segments: [String]) -> Resolution {
        var values: [String] = []
        var allowed: Set<HTTPMethod> = []
        if let route = search(node: 0, segments: segments, depth: 0, method: method, values: &values, allowed: &allowed)
        {
            var parameters: [String: String] = [:]
            if !route.parameterNames.isEmpty {
                parameters.reserveCapacity(route.parameterNames.count)
                for (name, value) in zip(route.parameterNames, values) { parameters[name] = value }
            }
            return .found(route, parameters)
        }
        if allowed.isEmpty { return .notFound }
        if allowed.contains(.GET) { allowed.insert(.HEAD) }
        return .methodNotAllowed(allowed: HTTPMethod.allCases.filter(allowed.contains))
    }

    /// The methods routed for already-decoded path segments (HEAD wherever GET is), in
    /// ``HTTPMethod`` order; empty when no route has the path. For a method ``HTTPMethod`` does
    /// not model, which the server answers like a method without a route.
    func allowedMethods(segments: [String]) -> [HTTPMethod] {
        var values: [String] = []
        var allowed: Set<HTTPMethod> = []
        _ = search(node: 0, segments: segments, depth: 0, method: nil, values: &values, allowed: &allowed)
        if allowed.contains(.GET) { allowed.insert(.HEAD) }
        return HTTPMethod.allCases.filter(allowed.contains)
    }

    /// `method` nil matches no route: the search then only collects `allowed`.
    private func search(
        node index: Int, segments: [String], depth: Int, method: HTTPMethod?,
        values: inout [String], allowed: inout Set<HTTPMethod>
    ) -> Route? {
        if depth == segments.count {
            let routes = nodes[index].routes
            if let method, let route = routes[method] ?? (method == .HEAD ? routes[.GET] : nil) { return route }
            allowed.formUnion(routes.keys)
            return nil
        }
        let segment = segments[depth]
        if let next = nodes[index].literals[segment],
            let route = search(
                node: next, segments: segments, depth: depth + 1, method: method, values: &values, allowed: &allowed)
        {
            return route
        }
        if let next = nodes[index].parameter, !segment.isEmpty {
            values.append(segment)
            if let route = search(
                node: next, segments: segments, depth: depth + 1, method: method, values: &values, allowed: &allowed)
            {
                return route
            }
            values.removeLast()
        }
        return nil
    }

    private mutating func child(of index: Int, literal: String) -> Int {
        if let existing = nodes[index].literals[literal] { return existing }
        nodes.append(Node())
        nodes[index].literals[literal] = nodes.count - 1
        return nodes.count - 1
    }

    private mutating func child(of index: Int, parameter: Void) -> Int {
        if let existing = nodes[index].parameter { return existing }
        nodes.append(Node())
        nodes[index].parameter = nodes.count - 1
        return nodes.count - 1
    }
}
