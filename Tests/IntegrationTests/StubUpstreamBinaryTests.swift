import Foundation
import TestSupport
import Testing

/// `chat-service stub-upstream` as a subprocess: the three routes, admin, signals, bad flags.
@Suite("stub-upstream binary", .serialized, .timeLimit(.minutes(1)))
struct StubUpstreamBinaryTests {
    @Test func servesTheContractAndExitsCleanlyOnSIGTERM() async throws {
        let port = freeLoopbackPort()
        let stub = try ServiceProcess(
            arguments: ["stub-upstream", "--port", "\(port)", "--chats", "10", "--token", "tk"], environment: [:])
        let base = "http://127.0.0.1:\(port)"
        let auth = ["Authorization": "Bearer tk"]
        let up = await eventually(timeout: .seconds(20)) { await httpGet("\(base)/admin/stats") != nil }
        #expect(up, "log:\n\(stub.output())")
        #expect(stub.output().contains("stub upstream listening"))

        let chat = await httpGet("\(base)/v1/chats/chat-10/participants", headers: auth)
        #expect(chat?.status == 200)
        #expect(chat?.body.contains(#""user_id":"u-10-0""#) == true)
        #expect(await httpGet("\(base)/v1/chats/chat-11/participants", headers: auth)?.status == 404)
        #expect(await httpGet("\(base)/v1/chats/chat-1/participants")?.status == 401)

        let batch = await httpRequest(
            "POST", "\(base)/v1/participants:batchGet", headers: auth,
            body: Data(#"{"chat_ids":["chat-1","nope"]}"#.utf8))
        #expect(batch?.status == 200)
        #expect(batch?.body.contains(#""not_found":["nope"]"#) == true)

        let page = await httpGet("\(base)/v1/chats?page_size=4&page_token=9", headers: auth)
        #expect(page?.body == #"{"chat_ids":["chat-9","chat-10"],"next_page_token":null}"#)

        let faults = await httpRequest("PUT", "\(base)/admin/faults", body: Data(#"{"fail_next":1}"#.utf8))
        #expect(faults?.status == 200)
        #expect(await httpGet("\(base)/v1/chats?page_size=4", headers: auth)?.status == 503)
        #expect(await httpGet("\(base)/v1/chats?page_size=4", headers: auth)?.status == 200)

        stub.signal(SIGTERM)
        #expect(await stub.waitForExit(timeout: .seconds(15)) == 0, "log:\n\(stub.output())")
    }

    @Test func aHangingStubStillStopsOnSIGINT() async throws {
        let port = freeLoopbackPort()
        let stub = try ServiceProcess(
            arguments: ["stub-upstream", "--port", "\(port)", "--chats", "3", "--hang"], environment: [:])
        let base = "http://127.0.0.1:\(port)"
        #expect(
            await eventually(timeout: .seconds(20)) { await httpGet("\(base)/admin/stats") != nil },
            "log:\n\(stub.output())")
        let hanging = Task { await httpGet("\(base)/v1/chats/chat-1/participants", timeout: .seconds(30)) }
        let parked = await eventually(timeout: .seconds(5)) {
            await httpGet("\(base)/admin/stats")?.body.contains(#""hanging":1"#) == true
        }
        #expect(parked)
        stub.signal(SIGINT)
        #expect(await stub.waitForExit(timeout: .seconds(15)) == 0, "log:\n\(stub.output())")
        let reply = await hanging.value
        #expect(reply == nil || reply?.status == 503)
    }

    @Test func badFlagsAreRefused() async throws {
        let stub = try ServiceProcess(arguments: ["stub-upstream", "--error-rate", "2"], environment: [:])
        let status = await stub.waitForExit(timeout: .seconds(10))
        #expect(status != nil && status != 0)
        #expect(stub.output().contains("--error-rate"))
    }
}
