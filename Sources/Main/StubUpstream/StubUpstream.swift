import Actors
public import Logging
public import ChatRuntime

/// A stand-in for the upstream participants API (DESIGN §5), for demos, tests and benchmarks:
/// deterministic synthetic data (``StubDataset``), injectable faults (``StubFaults``) and
/// request counts (``StubStats``), on an ``HTTPServer`` on one ``EventLoop``.
///
/// Routes:
/// - the contract: `GET /v1/chats/{chat_id}/participants` (200, 404),
///   `POST /v1/participants:batchGet` (400 when the body is bad or names more than
///   ``Settings/maxBatch`` ids), `GET /v1/chats?page_size=N&page_token=T`; each needs
///   `Authorization: Bearer <token>` when ``Settings/token`` is set (401 otherwise);
/// - admin, never faulty and never behind the token: `GET /admin/stats`,
///   `GET /admin/stats/chats/{chat_id}`, `GET|PUT|DELETE /admin/faults`,
///   `POST /admin/chats/{chat_id}/bump`, `POST /admin/reset`.
///
/// Waits (latency, hang) are parked continuations with a loop timer, so ``shutdown()`` ends
/// every one of them at once and is never held up by a hanging request. The HTTP server does
/// not tell a handler that its client left, so a hanging request ends when the fault is
/// cleared, the stub shuts down, or ``Settings/maxHang`` passes.
///
/// The actor runs on the loop's executor, like the server's handlers: no thread hops.
public actor StubUpstream {
    /// The stub's data set, limits and initial faults.
    public struct Settings: Sendable {
        /// Chats `chat-1` ... `chat-<chats>`.
        public var chats: Int
        public var participantsPerChat: Int
        /// The bearer token the contract's routes require; nil for none.
        public var token: String?
        /// Ids per batch request at most.
        public var maxBatch: Int
        /// Larger `page_size` values are clamped to it.
        public var maxPageSize: Int
        /// The page size when the request gives none.
        public var defaultPageSize: Int
        /// The faults at start.
        public var faults: StubFaults
        /// The longest a request hangs.
        public var maxHang: Duration
        public var limits: HTTPServerLimits

        public init(
            chats: Int, participantsPerChat: Int, token: String? = nil, maxBatch: Int = 1000,
            maxPageSize: Int = 1000, defaultPageSize: Int = 100, faults: StubFaults = StubFaults(),
            maxHang: Duration = .seconds(3600), limits: HTTPServerLimits = HTTPServerLimits(maxBodySize: 4 * 1024 * 1024)
        ) {
            precondition(chats >= 0 && participantsPerChat >= 0, "stub sizes must not be negative")
            precondition(maxBatch >= 1 && maxPageSize >= 1 && defaultPageSize >= 1, "stub limits must be positive")
            self.chats = chats
            self.participantsPerChat = participantsPerChat
            self.token = token.flatMap { $0.isEmpty ? nil : $0 }
            self.maxBatch = maxBatch
            self.maxPageSize = maxPageSize
            self.defaultPageSize = defaultPageSize
            self.faults = faults
            self.maxHang = maxHang
            self.limits = limits
        }
    }

    public nonisolated let unownedExecutor: UnownedSerialExecutor
    public nonisolated let settings: Settings
    private let loop: EventLoop
    private let logger: Logger
    private let expectedAuthorization: String?

    /// The data served; bumps change it.
    public private(set) var dataset: StubDataset
    /// What was asked so far.
    public private(set) var statistics: StubStats
    /// The faults in force.
    public private(set) var faults: StubFaults
    /// The port the server listens on, once started.
    public private(set) var port: Int?

    private var random: SeededRandom
    private var malformedTurn = 0
    private var server: HTTPServer?
    private var isShuttingDown = false
    private var parked: [UInt64: ParkedRequest] = [:]
    private var nextParkID: UInt64 = 0

    /// A request waiting out a latency or hang fault.
    private struct ParkedRequest {
        let continuation: CheckedContinuation<Void, Never>
        let timer: LoopTimer
        let isHang: Bool
    }

    public init(settings: Settings, loop: EventLoop, logger: Logger) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.settings = settings
        self.loop = loop
        self.logger = logger
        self.expectedAuthorization = settings.token.map { "Bearer \($0)" }
        self.dataset = StubDataset(chatCount: settings.chats, participantsPerChat: settings.participantsPerChat)
        self.statistics = StubStats(chatCount: settings.chats)
        self.faults = settings.faults
        self.random = SeededRandom(seed: settings.faults.seed)
    }

    // MARK: Lifecycle

    /// Listens on `host:port` (0 picks a free port); returns the bound port.
    public func start(host: String = "127.0.0.1", port: Int) async throws(HTTPServerError) -> Int {
        let server = HTTPServer(loop: loop, router: makeRouter(), limits: settings.limits, logger: logger)
        let bound = try await server.start(host: host, port: port)
        self.server = server
        self.port = bound
        logger.info("stub upstream listening", metadata: [
            "stub.host": "\(host)", "stub.port": "\(bound)", "stub.chats": "\(settings.chats)",
            "stub.participants_per_chat": "\(settings.participantsPerChat)", "stub.token": "\(settings.token == nil ? "none" : "required")",
        ])
        return bound
    }

    /// Ends every parked request (hangs included), answers what is in flight within a short
    /// grace period, and stops listening. Idempotent.
    public func shutdown() async {
        isShuttingDown = true
        releaseParked { _ in true }
        if let server {
            self.server = nil
            await server.shutdown(gracePeriod: .seconds(2))
        }
    }

    // MARK: Test and admin accessors

    /// Requests that named chat `id` so far (0 for ids outside the dataset).
    public func requestCount(forChat id: String) -> Int {
        dataset.chatNumber(of: id).map { statistics.requests(forChat: $0) } ?? 0
    }

    /// Replaces the faults; reseeds the fault generator; releases hanging requests when `hang`
    /// turns off.
    public func setFaults(_ newFaults: StubFaults) {
        let wasHanging = faults.hang
        faults = newFaults
        random = SeededRandom(seed: newFaults.seed)
        malformedTurn = 0
        if wasHanging && !newFaults.hang {
            releaseParked { $0.isHang }
        }
        logger.info("stub faults set", metadata: ["stub.faults": "\(String(decoding: newFaults.jsonBytes(), as: UTF8.self))"])
    }

    /// Changes some faults, as ``setFaults(_:)`` does.
    public func updateFaults(_ change: @Sendable (inout StubFaults) -> Void) {
        var updated = faults
        change(&updated)
        setFaults(updated)
    }

    /// Removes every fault (keeping the seed) and releases hanging requests.
    public func clearFaults() {
        var cleared = StubFaults()
        cleared.seed = faults.seed
        setFaults(cleared)
    }

    /// Adds one to chat `id`'s version; returns the new version, nil for an unknown chat.
    @discardableResult
    public func bump(chat id: String) -> Int64? {
        guard let number = dataset.chatNumber(of: id) else { return nil }
        return dataset.bump(number)
    }

    /// Zeroes the request counts.
    public func resetStatistics() {
        statistics.reset()
    }

    /// Requests currently hanging.
    public var hangingRequests: Int {
        parked.values.count(where: \.isHang)
    }

    // MARK: Contract routes

    private func makeRouter() -> HTTPRouter {
        var router = HTTPRouter()
        router.add(.GET, "/v1/chats/{chat_id}/participants") { [weak self] request in
            await self?.getParticipants(request) ?? Self.gone
        }
        router.add(.POST, "/v1/participants:batchGet") { [weak self] request in
            await self?.batchGet(request) ?? Self.gone
        }
        router.add(.GET, "/v1/chats") { [weak self] request in
            await self?.listChats(request) ?? Self.gone
        }
        addAdminRoutes(to: &router)
        return router
    }

    static let gone = HTTPResponse.error(status: 503, code: "stopping", message: "the stub upstream is stopping")

    private func getParticipants(_ request: HTTPRequest) async -> HTTPResponse {
        guard isAuthorized(request) else { return unauthorized() }
        statistics.count(.participants)
        let id = request.pathParameters["chat_id"] ?? ""
        statistics.countID(number: dataset.chatNumber(of: id))
        if let faulty = await injectFaults() { return faulty }
        guard let number = dataset.chatNumber(of: id) else {
            return .error(status: 404, code: "not_found", message: "no chat \(id)")
        }
        var writer = JSONWriter(reservingCapacity: 64 + settings.participantsPerChat * 160)
        dataset.writeChat(number, into: &writer)
        return answer(writer.bytes, route: .participants)
    }

    private func batchGet(_ request: HTTPRequest) async -> HTTPResponse {
        guard isAuthorized(request) else { return unauthorized() }
        statistics.count(.batchGet)
        let ids: [ChatID]
        do {
            ids = try UpstreamDecoder.decodeBatchGetRequest(request.body).chatIDs
        } catch {
            return .error(status: 400, code: "invalid_body", message: #"expected {"chat_ids": [valid chat ids]}: "# + error.description)
        }
        guard ids.count <= settings.maxBatch else {
            return .error(status: 400, code: "too_many_ids", message: "at most \(settings.maxBatch) chat ids per batch, got \(ids.count)")
        }
        // A chat named twice in one request is asked for once.
        var seen = Set<String>(minimumCapacity: ids.count)
        var answered = ids.filter { seen.insert($0.rawValue).inserted }
        for id in answered { statistics.countID(number: dataset.chatNumber(of: id.rawValue)) }
        if let faulty = await injectFaults() { return faulty }

        if !answered.isEmpty, roll(faults.partialRate) {
            statistics.count(.partial)
            answered = leaveSomeOut(answered)
        }
        var writer = JSONWriter(reservingCapacity: 32 + answered.count * (64 + settings.participantsPerChat * 160))
        var notFound: [ChatID] = []
        writer.appendRaw(#"{"chats":["#)
        var first = true
        for id in answered {
            guard let number = dataset.chatNumber(of: id.rawValue) else {
                notFound.append(id)
                continue
            }
            if !first { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            first = false
            dataset.writeChat(number, into: &writer)
        }
        writer.appendRaw(#"],"not_found":["#)
        for (index, id) in notFound.enumerated() {
            if index > 0 { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            writer.appendString(id.rawValue)
        }
        writer.appendRaw("]}")
        return answer(writer.bytes, route: .batchGet)
    }

    private func listChats(_ request: HTTPRequest) async -> HTTPResponse {
        guard isAuthorized(request) else { return unauthorized() }
        statistics.count(.listChats)
        var size = settings.defaultPageSize
        if let text = request.query["page_size"] {
            guard let requested = Int(text), requested >= 1 else {
                return .error(status: 400, code: "invalid_page_size", message: "page_size must be a positive integer")
            }
            size = min(requested, settings.maxPageSize)
        }
        let token = request.query["page_token"].flatMap { $0.isEmpty ? nil : $0 }
        if let faulty = await injectFaults() { return faulty }
        guard let page = dataset.page(size: size, token: token) else {
            return .error(status: 400, code: "invalid_page_token", message: "unknown page_token")
        }
        var writer = JSONWriter(reservingCapacity: 48 + page.chatIDs.count * 16)
        writer.appendRaw(#"{"chat_ids":["#)
        for (index, id) in page.chatIDs.enumerated() {
            if index > 0 { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            writer.appendString(id)
        }
        writer.appendRaw(#"],"next_page_token":"#)
        writer.appendString(orNull: page.nextPageToken)
        writer.appendRaw(ascii: UInt8(ascii: "}"))
        return answer(writer.bytes, route: .listChats)
    }

    // MARK: Faults

    private func isAuthorized(_ request: HTTPRequest) -> Bool {
        guard let expectedAuthorization else { return true }
        return request.headers["Authorization"] == expectedAuthorization
    }

    private func unauthorized() -> HTTPResponse {
        statistics.countUnauthorized()
        var response = HTTPResponse.error(status: 401, code: "unauthorized", message: "a valid bearer token is required")
        response.headers.append(("WWW-Authenticate", "Bearer"))
        return response
    }

    /// Applies the faults before the answer (see ``StubFaults`` for the order); returns the
    /// answer that replaces the normal one, if any.
    private func injectFaults() async -> HTTPResponse? {
        if faults.hang && !isShuttingDown {
            statistics.count(.hang)
            await park(for: settings.maxHang, isHang: true)
        }
        if faults.latency > .zero || faults.latencyJitter > .zero {
            statistics.count(.latency)
            await park(for: jittered(faults.latency, by: faults.latencyJitter), isHang: false)
        }
        if isShuttingDown { return Self.gone }
        if faults.failNext > 0 {
            faults.failNext -= 1
            statistics.count(.failNext)
            return failure(status: faults.failStatus)
        }
        if roll(faults.rate429) {
            statistics.count(.rateLimited)
            return failure(status: 429)
        }
        if roll(faults.errorRate) {
            statistics.count(.error)
            return failure(status: 503)
        }
        return nil
    }

    private func failure(status: Int) -> HTTPResponse {
        var response = HTTPResponse.error(
            status: status, code: status == 429 ? "rate_limited" : "injected_fault", message: "fault injected by the stub upstream")
        if status == 429 { response.headers.append(("Retry-After", String(faults.retryAfterSeconds))) }
        return response
    }

    /// The normal 200 answer, or a malformed one when the malformed fault strikes.
    private func answer(_ body: [UInt8], route: StubStats.Route) -> HTTPResponse {
        guard roll(faults.malformedRate) else { return .json(bytes: body) }
        statistics.count(.malformed)
        var kind = faults.malformedKind
        if kind == .mixed {
            let kinds: [StubFaults.MalformedKind] = [.notJSON, .wrongTypes, .truncated]
            kind = kinds[malformedTurn % kinds.count]
            malformedTurn += 1
        }
        return StubMalformedBodies.response(kind: kind, route: route, valid: body)
    }

    private func roll(_ rate: Double) -> Bool {
        guard rate > 0 else { return false }
        guard rate < 1 else { return true }
        return Double.random(in: 0..<1, using: &random) < rate
    }

    private func jittered(_ base: Duration, by jitter: Duration) -> Duration {
        guard jitter > .zero else { return base }
        let offset = Double.random(in: -1...1, using: &random) * jitter.timeInterval
        return .milliseconds(Int64(max(0, (base.timeInterval + offset) * 1000).rounded()))
    }

    /// Leaves out one id chosen at random and about half of the others; keeps the order.
    private func leaveSomeOut(_ ids: [ChatID]) -> [ChatID] {
        let dropped = Int.random(in: 0..<ids.count, using: &random)
        var kept: [ChatID] = []
        for (index, id) in ids.enumerated() where index != dropped && Bool.random(using: &random) {
            kept.append(id)
        }
        return kept
    }

    // MARK: Parking

    private func park(for duration: Duration, isHang: Bool) async {
        guard duration > .zero, !isShuttingDown else { return }
        let id = nextParkID
        nextParkID += 1
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let timer = LoopTimer(loop: loop) { [weak self] in
                self?.assumeIsolated { $0.unpark(id) }
            }
            timer.schedule(after: duration)
            parked[id] = ParkedRequest(continuation: continuation, timer: timer, isHang: isHang)
        }
    }

    private func unpark(_ id: UInt64) {
        guard let request = parked.removeValue(forKey: id) else { return }
        request.timer.cancel()
        request.continuation.resume()
    }

    private func releaseParked(where shouldRelease: (ParkedRequest) -> Bool) {
        for (id, request) in parked where shouldRelease(request) {
            unpark(id)
        }
    }
}
