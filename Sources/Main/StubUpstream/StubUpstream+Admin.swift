import Actors
import ChatRuntime

/// The admin routes: read the counts, change the faults and the data at run time. Never
/// faulty, never behind the token (the stub listens on loopback unless told otherwise).
extension StubUpstream {
    func addAdminRoutes(to router: inout HTTPRouter) {
        router.add(.GET, "/admin/stats") { [weak self] _ in
            await self?.statsResponse() ?? Self.gone
        }
        router.add(.GET, "/admin/stats/chats/{chat_id}") { [weak self] request in
            await self?.chatStatsResponse(request.pathParameters["chat_id"] ?? "") ?? Self.gone
        }
        router.add(.GET, "/admin/faults") { [weak self] _ in
            await self?.faultsResponse() ?? Self.gone
        }
        router.add(.PUT, "/admin/faults") { [weak self] request in
            await self?.patchFaults(request.body) ?? Self.gone
        }
        router.add(.DELETE, "/admin/faults") { [weak self] _ in
            guard let self else { return Self.gone }
            await self.clearFaults()
            return await self.faultsResponse()
        }
        router.add(.POST, "/admin/chats/{chat_id}/bump") { [weak self] request in
            await self?.bumpResponse(request.pathParameters["chat_id"] ?? "") ?? Self.gone
        }
        router.add(.POST, "/admin/reset") { [weak self] _ in
            guard let self else { return Self.gone }
            await self.resetStatistics()
            return .json(bytes: Array(#"{"reset":true}"#.utf8))
        }
    }

    private func statsResponse() -> HTTPResponse {
        .json(bytes: statistics.jsonBytes(faults: faults, hanging: hangingRequests))
    }

    private func chatStatsResponse(_ id: String) -> HTTPResponse {
        guard let number = dataset.chatNumber(of: id) else {
            return .error(status: 404, code: "not_found", message: "no chat \(id)")
        }
        var writer = JSONWriter(reservingCapacity: 96)
        writer.appendRaw(#"{"chat_id":"#)
        writer.appendString(id)
        writer.appendRaw(#","requests":"#)
        writer.appendInteger(Int64(statistics.requests(forChat: number)))
        writer.appendRaw(#","version":"#)
        writer.appendInteger(dataset.version(of: number))
        writer.appendRaw(ascii: UInt8(ascii: "}"))
        return .json(bytes: writer.bytes)
    }

    private func faultsResponse() -> HTTPResponse {
        .json(bytes: faults.jsonBytes())
    }

    private func patchFaults(_ body: [UInt8]) -> HTTPResponse {
        do {
            setFaults(try faults.applying(patch: body))
        } catch {
            return .error(status: 400, code: "invalid_faults", message: error.message)
        }
        return faultsResponse()
    }

    private func bumpResponse(_ id: String) -> HTTPResponse {
        guard let version = bump(chat: id) else {
            return .error(status: 404, code: "not_found", message: "no chat \(id)")
        }
        var writer = JSONWriter(reservingCapacity: 64)
        writer.appendRaw(#"{"chat_id":"#)
        writer.appendString(id)
        writer.appendRaw(#","version":"#)
        writer.appendInteger(version)
        writer.appendRaw(ascii: UInt8(ascii: "}"))
        return .json(bytes: writer.bytes)
    }
}
