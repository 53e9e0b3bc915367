import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import ChatRuntime

/// Immediate handlers: answered inside the server's read callback on the loop thread, or declined to
/// the route's async handler.
@Suite("HTTP immediate handlers", .timeLimit(.minutes(1)))
struct HTTPImmediateHandlerTests {
    @Test func answersOrDeclinesToTheAsyncHandler() async throws {
        let loop = EventLoop(name: "immediate-test")
        let immediateCalls = Calls()
        let asyncCalls = Calls()
        var router = HTTPRouter()
        router.add(
            .GET, "/items/{id}",
            immediate: { request in
                immediateCalls.count.add(1, ordering: .relaxed)
                loop.preconditionInLoop()
                guard request.pathParameters["id"] == "fast" else { return nil }
                return .text("immediate \(request.headers["x-tag"] ?? "")")
            },
            handler: { request in
                asyncCalls.count.add(1, ordering: .relaxed)
                return .text("async \(request.pathParameters["id"] ?? "")")
            })
        let server = HTTPServer(loop: loop, router: router, logger: Logger(label: "test.immediate"))
        let port = try await server.start(host: "127.0.0.1", port: 0)

        let fast = try await Self.get(port, "/items/fast", tag: "t1")
        #expect(fast.status == 200)
        #expect(String(decoding: fast.body, as: UTF8.self) == "immediate t1")
        let slow = try await Self.get(port, "/items/slow", tag: "t2")
        #expect(String(decoding: slow.body, as: UTF8.self) == "async slow")
        let head = try await Self.exchange(
            port, "HEAD /items/fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", hasBody: false)
        #expect(head.status == 200)
        #expect(head.header("content-length") == String("immediate ".utf8.count))

        #expect(immediateCalls.count.load(ordering: .relaxed) == 3)
        #expect(asyncCalls.count.load(ordering: .relaxed) == 1)
        #expect(await server.inFlight == 0)
        await server.stop()
        loop.stop()
    }

    @Test func routesWithoutImmediateHandlersStillWork() async throws {
        let loop = EventLoop(name: "immediate-test-2")
        var router = HTTPRouter()
        router.add(.GET, "/plain") { _ in .text("plain") }
        let server = HTTPServer(loop: loop, router: router, logger: Logger(label: "test.immediate"))
        let port = try await server.start(host: "127.0.0.1", port: 0)
        let response = try await Self.get(port, "/plain", tag: "")
        #expect(String(decoding: response.body, as: UTF8.self) == "plain")
        await server.stop()
        loop.stop()
    }

    /// The server writes Date (formatted once a second) and Content-Length itself; each comes
    /// exactly once, on immediate and deferred replies alike.
    @Test func repliesCarryOneDateAndOneContentLength() async throws {
        let loop = EventLoop(name: "immediate-test-3")
        var router = HTTPRouter()
        router.add(.GET, "/a", immediate: { _ in .text("immediate") }, handler: { _ in .text("unused") })
        router.add(.GET, "/b") { _ in .text("deferred reply") }
        router.add(.GET, "/c") { _ in
            HTTPResponse(status: 200, headers: [("Date", "Thu, 01 Jan 1970 00:00:00 GMT")], body: [])
        }
        let server = HTTPServer(loop: loop, router: router, logger: Logger(label: "test.immediate"))
        let port = try await server.start(host: "127.0.0.1", port: 0)
        for (path, body) in [("/a", "immediate"), ("/b", "deferred reply"), ("/c", "")] {
            let response = try await Self.get(port, path, tag: "")
            #expect(response.bodyText == body)
            let dates = response.headers.filter { $0.0.lowercased() == "date" }.map(\.1)
            let lengths = response.headers.filter { $0.0.lowercased() == "content-length" }.map(\.1)
            #expect(dates.count == 1, "\(path)")
            #expect(lengths == [String(body.utf8.count)], "\(path)")
            if path == "/c" { #expect(dates == ["Thu, 01 Jan 1970 00:00:00 GMT"]) }
        }
        #expect(HTTPDateHeader.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDateHeader.format(1_795_000_000) == "Wed, 18 Nov 2026 11:06:40 GMT")
        await server.stop()
        loop.stop()
    }

    final class Calls: Sendable {
        let count = Atomic<Int>(0)
    }

    static func get(_ port: Int, _ path: String, tag: String) async throws -> RawHTTPResponse {
        try await exchange(port, "GET \(path) HTTP/1.1\r\nHost: t\r\nX-Tag: \(tag)\r\nConnection: close\r\n\r\n")
    }

    static func exchange(_ port: Int, _ raw: String, hasBody: Bool = true) async throws -> RawHTTPResponse {
        try await offloadBlocking {
            let connection = try RawHTTPConnection(port: port)
            try connection.send(raw)
            return try connection.readResponse(hasBody: hasBody)
        }
    }
}
