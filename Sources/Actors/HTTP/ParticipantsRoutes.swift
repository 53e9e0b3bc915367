import ChatRuntime
import Foundation

/// What the operator routes need from the sync layer (the Scheduler), as closures so the
/// routes do not depend on how runs are organised.
public struct SyncControl: Sendable {
    /// Starts a full refresh, or joins the one running; returns its job id.
    public var requestFullRun: @Sendable () async -> String
    /// One job's status as JSON, nil when unknown.
    public var runStatus: @Sendable (String) async -> [UInt8]?
    /// The sync layer's status as a JSON object.
    public var status: @Sendable () async -> [UInt8]

    public init(
        requestFullRun: @escaping @Sendable () async -> String,
        runStatus: @escaping @Sendable (String) async -> [UInt8]?,
        status: @escaping @Sendable () async -> [UInt8]
    ) {
        self.requestFullRun = requestFullRun
        self.runStatus = runStatus
        self.status = status
    }
}

/// The participants routes of DESIGN §6: the user read and the operator refresh and status.
public struct ParticipantsRoutes: Sendable {
    public let reader: ParticipantsReader
    public let users: UserAuthenticator
    public let admins: AdminAuthenticator
    public let sync: SyncControl
    public let supervisor: RedisSupervisor
    public let instanceID: String

    public init(
        reader: ParticipantsReader, users: UserAuthenticator, admins: AdminAuthenticator,
        sync: SyncControl, supervisor: RedisSupervisor, instanceID: String
    ) {
        self.reader = reader
        self.users = users
        self.admins = admins
        self.sync = sync
        self.supervisor = supervisor
        self.instanceID = instanceID
    }

    public var registrations: [RouteRegistration] {
        [
            RouteRegistration(
                .GET, "/v1/chats/{chat_id}/participants",
                immediate: { request in readFromMemory(request) },
                handler: { request in await read(request) }),
            RouteRegistration(.POST, "/internal/chats/{chat_id}/participants/refresh") { request in
                await refreshChat(request)
            },
            RouteRegistration(.POST, "/internal/participants/refresh") { request in await refreshAll(request) },
            RouteRegistration(.GET, "/internal/participants/refresh/{job_id}") { request in await job(request) },
            RouteRegistration(.GET, "/internal/participants/status") { request in await status(request) },
        ]
    }

    /// Routes that answer 503 when PARTICIPANTS_INTEGRATION_DISABLED is on.
    public static let disabledRegistrations: [RouteRegistration] = {
        let disabled: HTTPHandler = { _ in
            .error(status: 503, code: "participants_disabled", message: "the participants integration is disabled")
        }
        return [
            RouteRegistration(.GET, "/v1/chats/{chat_id}/participants", disabled),
            RouteRegistration(.POST, "/internal/chats/{chat_id}/participants/refresh", disabled),
            RouteRegistration(.POST, "/internal/participants/refresh", disabled),
            RouteRegistration(.GET, "/internal/participants/status", disabled),
        ]
    }()

    // MARK: Handlers

    /// The read route's immediate path, in the HTTP server's callback on the loop thread: a
    /// fresh L1 hit (the common case) for a token verified recently is answered without a task
    /// or an actor hop; the rest (stale, Redis, upstream, a token not seen yet, refusals) is
    /// declined to ``read(_:)``, which verifies the token in full.
    func readFromMemory(_ request: HTTPRequest) -> HTTPResponse? {
        guard let chat = Self.chatID(request), let entry = reader.freshFromMemory(chat) else { return nil }
        guard users.isRemembered(request) else { return nil }
        // The entry's stored form, decompressed into the body, with `stale` and `source` added.
        // One that does not decompress is left to ``read(_:)``, whose lookup drops it.
        guard let body = try? EntryCodec.encodeResponse(entry, stale: false, source: .memory) else { return nil }
        reader.trackFromMemory(chat)
        return .json(bytes: body)
    }

    func read(_ request: HTTPRequest) async -> HTTPResponse {
        if let rejection = await users.reject(request) { return rejection }
        guard let chat = Self.chatID(request) else { return Self.invalidChatID }
        switch await reader.read(chat) {
        case .entry(let entry, let stale, let source):
            return .json(bytes: EntryCodec.encodeResponse(entry, stale: stale, source: source))
        case .notFound:
            return .error(status: 404, code: "chat_not_found", message: "no chat \(chat)")
        case .unavailable(let error):
            var response = HTTPResponse.error(
                status: 503, code: "participants_unavailable",
                message: "neither the cache nor upstream can answer: \(error)")
            response.headers.append(("Retry-After", "5"))
            return response
        }
    }

    func refreshChat(_ request: HTTPRequest) async -> HTTPResponse {
        if let rejection = admins.reject(request) { return rejection }
        guard let chat = Self.chatID(request) else { return Self.invalidChatID }
        await reader.cache.track(chat)
        switch await reader.coordinator.refresh(chat) {
        case .fetched(let entry):
            return .json(bytes: EntryCodec.encodeResponse(entry, stale: false, source: .upstream))
        case .fetchedByPeer(let entry):
            // Another instance was fetching the chat when the request came; its result is as new.
            return .json(bytes: EntryCodec.encodeResponse(entry, stale: false, source: .cache))
        case .notFound:
            return .error(status: 404, code: "chat_not_found", message: "upstream does not know chat \(chat)")
        case .failed(let error):
            let status = error.code == .timeout ? 504 : 502
            return .error(status: status, code: "upstream_\(error.code.rawValue)", message: "\(error)")
        }
    }

    func refreshAll(_ request: HTTPRequest) async -> HTTPResponse {
        if let rejection = admins.reject(request) { return rejection }
        let jobID = await sync.requestFullRun()
        var response = HTTPResponse.json(["job_id": jobID], status: 202)
        response.headers.append(("Location", "/internal/participants/refresh/\(jobID)"))
        return response
    }

    func job(_ request: HTTPRequest) async -> HTTPResponse {
        if let rejection = admins.reject(request) { return rejection }
        let id = request.pathParameters["job_id"] ?? ""
        guard let body = await sync.runStatus(id) else {
            return .error(status: 404, code: "job_not_found", message: "no refresh job \(id)")
        }
        return .json(bytes: body)
    }

    func status(_ request: HTTPRequest) async -> HTTPResponse {
        if let rejection = admins.reject(request) { return rejection }
        let state = await supervisor.state
        let statistics = await reader.cache.statistics
        let syncBody = await sync.status()
        var redis: [String: Any] = ["state": state.name, "detail": state.description]
        if let nodes = await supervisor.clusterNodes {
            redis["nodes"] = nodes.map { RedisNodeBody($0).jsonObject }
        }
        var object: [String: Any] = [
            "instance_id": instanceID,
            "redis": redis,
            "lazy_update": reader.lazyUpdate,
            "refreshes_in_flight": await reader.coordinator.inFlightCount,
        ]
        if let cacheObject = try? JSONSerialization.jsonObject(with: JSONEncoder().encode(statistics)) {
            object["cache"] = cacheObject
        }
        if let syncObject = try? JSONSerialization.jsonObject(with: Data(syncBody)) {
            object["sync"] = syncObject
        }
        guard let body = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return .error(status: 500, code: "internal", message: "status could not be encoded")
        }
        return .json(bytes: Array(body))
    }

    // MARK: Helpers

    static func chatID(_ request: HTTPRequest) -> ChatID? {
        request.pathParameters["chat_id"].flatMap(ChatID.init(validating:))
    }

    static let invalidChatID = HTTPResponse.error(
        status: 400, code: "invalid_chat_id",
        message: "chat ids are 1-\(ChatID.maximumLength) characters of A-Z a-z 0-9 _ . : -")
}
