public import ChatRuntime
import Foundation
public import Logging
import Metrics
public import ServiceLifecycle

/// One route another component contributes to the frontend.
public struct RouteRegistration: Sendable {
    public var method: HTTPMethod
    public var pattern: String
    public var handler: HTTPHandler
    /// Answers what it can synchronously in the server's callback (see ``HTTPImmediateHandler``);
    /// the rest goes to `handler`.
    public var immediate: HTTPImmediateHandler?

    public init(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping HTTPHandler) {
        self.init(method, pattern, immediate: nil, handler: handler)
    }

    public init(
        _ method: HTTPMethod, _ pattern: String, immediate: HTTPImmediateHandler?, handler: @escaping HTTPHandler
    ) {
        self.method = method
        self.pattern = pattern
        self.handler = handler
        self.immediate = immediate
    }
}

/// The service's HTTP API (DESIGN §6): `/health`, `/ready`, `/metrics`, `/openapi.yaml` (the
/// API's description, docs/openapi.yaml) and the routes other components register. Every route
/// is counted by route, method and status, and timed.
public actor HTTPFrontend: Service {
    /// Where and how to listen.
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var limits: HTTPServerLimits
        /// Bound for finishing in-flight requests after graceful shutdown begins.
        public var drainTimeout: Duration

        public init(host: String, port: Int, limits: HTTPServerLimits, drainTimeout: Duration) {
            self.host = host
            self.port = port
            self.limits = limits
            self.drainTimeout = drainTimeout
        }
    }

    public nonisolated let unownedExecutor: UnownedSerialExecutor
    private let loop: EventLoop
    private let settings: Settings
    private let supervisor: RedisSupervisor
    private let logger: Logger
    private var server: HTTPServer?
    private var draining = false
    private let started = ContinuousClock.now
    private var boundPortWaiters: [CheckedContinuation<Int, any Error>] = []
    private var boundPortResult: Result<Int, any Error>?
    private let extraRoutes: [RouteRegistration]
    private let metricsText: @Sendable () -> [UInt8]

    /// - Parameters:
    ///   - routes: routes of other components (the participants API, admin routes).
    ///   - metricsText: the Prometheus exposition for `/metrics`.
    public init(
        loop: EventLoop,
        settings: Settings,
        supervisor: RedisSupervisor,
        routes: [RouteRegistration],
        metricsText: @escaping @Sendable () -> [UInt8],
        logger: Logger
    ) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.loop = loop
        self.settings = settings
        self.supervisor = supervisor
        self.extraRoutes = routes
        self.metricsText = metricsText
        self.logger = logger
    }

    // MARK: Service

    public func run() async throws {
        let server = HTTPServer(loop: loop, router: makeRouter(), limits: settings.limits, logger: logger)
        self.server = server
        let port: Int
        do {
            port = try await server.start(host: settings.host, port: settings.port)
        } catch {
            resolveBoundPort(.failure(error))
            logger.critical(
                "cannot listen",
                metadata: [
                    "http.host": "\(settings.host)", "http.port": "\(settings.port)", "error": "\(error)",
                ])
            throw error
        }
        logger.info("listening", metadata: ["http.host": "\(settings.host)", "http.port": "\(port)"])
        resolveBoundPort(.success(port))
        try? await gracefulShutdown()
        draining = true
        let inFlight = await server.inFlight
        logger.info("draining HTTP requests", metadata: ["http.in_flight": "\(inFlight)"])
        await server.shutdown(gracePeriod: settings.drainTimeout)
    }

    /// The port actually bound (useful with port 0); waits until the listener is up.
    public func boundPort() async throws -> Int {
        // Checked inside the continuation's body, not before it: code on the loop must not
        // rely on a check made before `withCheckedContinuation` (docs/DECISIONS.md).
        return try await withCheckedThrowingContinuation { continuation in
            if let boundPortResult {
                continuation.resume(with: boundPortResult)
            } else {
                boundPortWaiters.append(continuation)
            }
        }
    }

    private func resolveBoundPort(_ result: Result<Int, any Error>) {
        boundPortResult = result
        for waiter in boundPortWaiters { waiter.resume(with: result) }
        boundPortWaiters.removeAll()
    }

    // MARK: Routes

    /// Method and pattern of every route served, in registration order; a test holds
    /// docs/openapi.yaml to it.
    public func routeTable() -> [(method: HTTPMethod, pattern: String)] {
        makeRouter().table
    }

    /// `GET /openapi.yaml`: docs/openapi.yaml as it is in the repository, compiled in by the
    /// EmbedOpenAPIDocument build plugin.
    static let openAPIDocument = HTTPResponse(
        status: 200, headers: [("Content-Type", "application/yaml")], body: Array(OpenAPIDocument.text.utf8))

    private func makeRouter() -> HTTPRouter {
        var router = HTTPRouter()
        let add = { (router: inout HTTPRouter, method: HTTPMethod, pattern: String, handler: @escaping HTTPHandler) in
            let metrics = RouteMetrics(route: pattern, method: method)
            router.add(method, pattern, Self.instrumented(handler, metrics))
        }
        add(&router, .GET, "/health") { [weak self] _ in
            guard let self else { return .error(status: 503, code: "stopping", message: "service is stopping") }
            return await self.health()
        }
        add(&router, .GET, "/ready") { [weak self] _ in
            guard let self, await !self.draining else {
                return .error(status: 503, code: "draining", message: "service is shutting down")
            }
            return .json(["status": "ready"])
        }
        let metricsText = self.metricsText
        add(&router, .GET, "/metrics") { _ in
            HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: metricsText())
        }
        add(&router, .GET, "/openapi.yaml") { _ in Self.openAPIDocument }
        for route in extraRoutes {
            let metrics = RouteMetrics(route: route.pattern, method: route.method)
            router.add(
                route.method, route.pattern,
                immediate: route.immediate.map { Self.instrumented($0, metrics) },
                handler: Self.instrumented(route.handler, metrics))
        }
        return router
    }

    private func health() async -> HTTPResponse {
        let state = await supervisor.state
        let since = await supervisor.since
        let sinceDate = Date.now.addingTimeInterval(-(ContinuousClock.now - since).timeInterval)
        let nodes = await supervisor.clusterNodes
        let body = HealthBody(
            status: state == .ready ? "ok" : "degraded",
            redis: .init(
                state: state.name, detail: state.description, since: sinceDate,
                nodes: nodes?.map(RedisNodeBody.init)),
            draining: draining,
            uptimeSeconds: (ContinuousClock.now - started).timeInterval)
        return .json(body)
    }

    private static func instrumented(_ handler: @escaping HTTPHandler, _ metrics: RouteMetrics) -> HTTPHandler {
        { request in
            let started = ContinuousClock.now
            let response = await handler(request)
            metrics.record(status: response.status, duration: ContinuousClock.now - started)
            return response
        }
    }

    private static func instrumented(_ handler: @escaping HTTPImmediateHandler, _ metrics: RouteMetrics)
        -> HTTPImmediateHandler
    {
        { request in
            let started = ContinuousClock.now
            // A declined request is counted once, by the async handler that answers it.
            guard let response = handler(request) else { return nil }
            metrics.record(status: response.status, duration: ContinuousClock.now - started)
            return response
        }
    }
}

/// The metrics of one route: requests by status, and their duration. The handles are made once
/// (per status, on first use) instead of per request: making one goes through the metrics
/// factory's registry, which showed up in profiles of the read path.
final class RouteMetrics: Sendable {
    private let route: String
    private let method: String
    private let duration: Metrics.Timer
    private let requests = AnnotatedMutex<[Int: Counter]>([:])

    init(route: String, method: HTTPMethod) {
        self.route = route
        self.method = method.rawValue
        duration = Metrics.Timer(label: "http_request_duration_seconds", dimensions: [("route", route)])
    }

    func record(status: Int, duration elapsed: Duration) {
        duration.recordDuration(elapsed)
        let counter = requests.withLock { counters in
            if let counter = counters[status] { return counter }
            let counter = Counter(
                label: "http_requests_total",
                dimensions: [
                    ("route", route), ("method", method), ("status", String(status)),
                ])
            counters[status] = counter
            return counter
        }
        counter.increment()
    }
}

/// The JSON body of `GET /health`.
struct HealthBody: Encodable {
    struct Redis: Encodable {
        var state: String
        var detail: String
        var since: Date
        /// With a Redis Cluster: each primary; absent for one server.
        var nodes: [RedisNodeBody]?
    }
    var status: String
    var redis: Redis
    var draining: Bool
    var uptimeSeconds: Double

    enum CodingKeys: String, CodingKey {
        case status, redis, draining
        case uptimeSeconds = "uptime_seconds"
    }
}

extension Duration {
    /// Seconds as a Double, for JSON and Foundation APIs.
    public var timeInterval: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// One Redis Cluster primary in `/health` and the status route.
struct RedisNodeBody: Encodable {
    var address: String
    var state: String
    var detail: String
    /// Its slot ranges, such as `0-5460` or `0-100,200-300`.
    var slots: String

    init(_ node: RedisNodeStatus) {
        address = node.address.description
        state = node.state.name
        detail = node.state.description
        slots = node.slots.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: ",")
    }

    var jsonObject: [String: Any] {
        ["address": address, "state": state, "detail": detail, "slots": slots]
    }
}
