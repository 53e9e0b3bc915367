import Actors
import Foundation
import Logging
import ChatRuntime
import StubUpstream
import Testing
import TestSupport

/// The stub upstream over real HTTP: contract edge cases, the admin routes, determinism of
/// its faults, and a shutdown that no hanging request can hold up.
@Suite("StubUpstream", .timeLimit(.minutes(1)))
struct StubUpstreamTests {
    static let logger = Logger(label: "test.stub-upstream")

    static func withStub(
        _ settings: StubUpstream.Settings = .init(chats: 20, participantsPerChat: 2, maxBatch: 5),
        _ body: (StubUpstream, String) async throws -> Void
    ) async throws {
        let loop = EventLoop(name: "stub-upstream-test")
        let stub = StubUpstream(settings: settings, loop: loop, logger: logger)
        let port = try await stub.start(port: 0)
        do {
            try await body(stub, "http://127.0.0.1:\(port)")
        } catch {
            await stub.shutdown()
            loop.stop()
            throw error
        }
        await stub.shutdown()
        loop.stop()
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    @Test func contractEdgeCasesAnswer400And404() async throws {
        try await Self.withStub { stub, base in
            #expect(await httpGet("\(base)/v1/chats/chat-21/participants")?.status == 404)
            let tooMany = #"{"chat_ids":["chat-1","chat-2","chat-3","chat-4","chat-5","chat-6"]}"#
            let answer = await httpRequest("POST", "\(base)/v1/participants:batchGet", body: Data(tooMany.utf8))
            #expect(answer?.status == 400)
            #expect(answer?.body.contains("too_many_ids") == true)
            for body in ["", "{}", #"{"chat_ids":"chat-1"}"#, #"{"chat_ids":["bad id"]}"#] {
                let reply = await httpRequest("POST", "\(base)/v1/participants:batchGet", body: Data(body.utf8))
                #expect(reply?.status == 400, "\(body)")
            }
            #expect(await httpGet("\(base)/v1/chats?page_token=bogus")?.status == 400)
            #expect(await httpGet("\(base)/v1/chats?page_size=0")?.status == 400)
            let page = await httpGet("\(base)/v1/chats?page_size=100000")
            #expect(page?.status == 200)
            #expect((Self.json(page?.body ?? "")["chat_ids"] as? [String])?.count == 20)
            #expect(Self.json(page?.body ?? "")["next_page_token"] is NSNull)
            #expect(await stub.statistics.requests(.batchGet) == 5)
        }
    }

    @Test func theTokenGuardsTheAPIButNotTheAdminRoutes() async throws {
        try await Self.withStub(.init(chats: 3, participantsPerChat: 1, token: "t0k")) { stub, base in
            #expect(await httpGet("\(base)/v1/chats")?.status == 401)
            #expect(await httpGet("\(base)/v1/chats", headers: ["Authorization": "Bearer nope"])?.status == 401)
            #expect(await httpGet("\(base)/v1/chats", headers: ["Authorization": "Bearer t0k"])?.status == 200)
            #expect(await httpGet("\(base)/admin/stats")?.status == 200)
            #expect(await stub.statistics.unauthorized == 2)
            #expect(await stub.statistics.requests(.listChats) == 1)
        }
    }

    @Test func adminRoutesChangeFaultsDataAndCounts() async throws {
        try await Self.withStub { stub, base in
            _ = await httpGet("\(base)/v1/chats/chat-3/participants")
            _ = await httpRequest("POST", "\(base)/v1/participants:batchGet", body: Data(#"{"chat_ids":["chat-3","chat-4"]}"#.utf8))
            let chatStats = await httpGet("\(base)/admin/stats/chats/chat-3")
            #expect(Self.json(chatStats?.body ?? "")["requests"] as? Int == 2)
            #expect(await httpGet("\(base)/admin/stats/chats/chat-99")?.status == 404)
            let stats = Self.json(await httpGet("\(base)/admin/stats")?.body ?? "")
            #expect(stats["ids_requested"] as? Int == 3)
            #expect((stats["requests"] as? [String: Int])?["batch_get"] == 1)

            let put = await httpRequest("PUT", "\(base)/admin/faults", body: Data(#"{"error_rate":1}"#.utf8))
            #expect(put?.status == 200)
            #expect(await stub.faults.errorRate == 1)
            #expect(await httpGet("\(base)/v1/chats/chat-3/participants")?.status == 503)
            let second = await httpRequest("PUT", "\(base)/admin/faults", body: Data(#"{"latency":"1ms"}"#.utf8))
            #expect(Self.json(second?.body ?? "")["error_rate"] as? Int == 1, "a partial update kept error_rate")
            #expect(await httpRequest("PUT", "\(base)/admin/faults", body: Data(#"{"eror_rate":1}"#.utf8))?.status == 400)
            #expect(await httpRequest("DELETE", "\(base)/admin/faults")?.status == 200)
            #expect(await stub.faults.isEmpty)
            #expect(await httpGet("\(base)/v1/chats/chat-3/participants")?.status == 200)

            let bump = await httpRequest("POST", "\(base)/admin/chats/chat-3/bump")
            #expect(Self.json(bump?.body ?? "")["version"] as? Int == 2)
            let bumped = await httpGet("\(base)/v1/chats/chat-3/participants")
            #expect(bumped?.body.contains("User 0 of chat 3 (v2)") == true)
            #expect(await httpRequest("POST", "\(base)/admin/chats/chat-77/bump")?.status == 404)

            #expect(await httpRequest("POST", "\(base)/admin/reset")?.status == 200)
            #expect(await stub.statistics.totalRequests == 0)
            #expect(await stub.requestCount(forChat: "chat-3") == 0)
        }
    }

    @Test func faultsAreDeterministicForASeed() async throws {
        var faults = StubFaults()
        faults.errorRate = 0.5
        faults.seed = 7
        var runs: [[Int]] = []
        for _ in 0..<2 {
            try await Self.withStub(.init(chats: 5, participantsPerChat: 1, faults: faults)) { _, base in
                var statuses: [Int] = []
                for _ in 0..<16 {
                    statuses.append(await httpGet("\(base)/v1/chats/chat-1/participants")?.status ?? 0)
                }
                runs.append(statuses)
            }
        }
        #expect(runs[0] == runs[1])
        #expect(runs[0].contains(503) && runs[0].contains(200))
    }

    @Test func shutdownEndsHangingRequests() async throws {
        let loop = EventLoop(name: "stub-upstream-hang")
        var faults = StubFaults()
        faults.hang = true
        let stub = StubUpstream(settings: .init(chats: 5, participantsPerChat: 1, faults: faults), loop: loop, logger: Self.logger)
        let port = try await stub.start(port: 0)
        let hanging = Task { await httpGet("http://127.0.0.1:\(port)/v1/chats/chat-1/participants", timeout: .seconds(30)) }
        #expect(await eventually(timeout: .seconds(5)) { await stub.hangingRequests == 1 })
        let started = ContinuousClock.now
        await stub.shutdown()
        #expect(ContinuousClock.now - started < .seconds(10), "shutdown waited for the hang")
        #expect(await stub.hangingRequests == 0)
        let reply = await hanging.value
        #expect(reply == nil || reply?.status == 503)
        loop.stop()
    }
}
