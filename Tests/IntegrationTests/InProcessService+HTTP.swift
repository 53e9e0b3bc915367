import Foundation
import Testing
import TestSupport

/// The integration tests' HTTP calls to an ``InProcessService``, as a user and as the operator.
extension InProcessService {
    /// GET as a user (``InProcessService/userToken`` unless told otherwise): status and JSON object.
    func get(_ path: String, token: String? = InProcessService.userToken) async -> (status: Int, json: [String: Any]) {
        let headers = token.map { ["Authorization": "Bearer \($0)"] } ?? [:]
        guard let reply = await httpGet(httpBase + path, headers: headers, timeout: .seconds(10)) else { return (0, [:]) }
        return (reply.status, Self.object(reply.body))
    }

    /// An operator request (``InProcessService/adminToken`` unless told otherwise).
    func admin(_ method: String, _ path: String, token: String? = InProcessService.adminToken) async -> (status: Int, json: [String: Any]) {
        let headers = token.map { ["Authorization": "Bearer \($0)"] } ?? [:]
        guard let reply = await httpRequest(method, httpBase + path, headers: headers, timeout: .seconds(10)) else { return (0, [:]) }
        return (reply.status, Self.object(reply.body))
    }

    static func object(_ body: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    /// How many keys of the backends' Redis match `pattern`.
    func redisKeyCount(pattern: String) async -> Int {
        await backends?.redisKeyCount(pattern: pattern) ?? 0
    }

    /// The job once it has ended (neither `queued` nor `running`); fails the test if it has not
    /// within `timeout`.
    func waitForJob(_ id: String, timeout: Duration = .seconds(30)) async throws -> [String: Any] {
        var last: [String: Any] = [:]
        let ended = await eventually(timeout: timeout) {
            last = await self.job(id)
            return (last["state"] as? String).map { $0 != "running" && $0 != "queued" } ?? false
        }
        try #require(ended, "job \(id) had not ended after \(timeout): \(last)")
        return last
    }

    /// `sync.coordination` of the status route.
    func coordination() async -> [String: Any] {
        let status = await admin("GET", "/internal/participants/status").json
        return (status["sync"] as? [String: Any])?["coordination"] as? [String: Any] ?? [:]
    }

    /// Whether the status route says this instance leads.
    var isLeader: Bool {
        get async { await coordination()["is_leader"] as? Bool == true }
    }

    /// The run `id` as the refresh route reports it.
    func job(_ id: String) async -> [String: Any] {
        await admin("GET", "/internal/participants/refresh/\(id)").json
    }
}
