import Foundation
import Logging
import Synchronization
import Testing

import TestSupport

@testable import Runtime

/// Deferred handlers: a request taken in the evhttp callback and answered later on the loop
/// thread, or declined (at once or later) to the route's async handler; a client that leaves
/// before the answer, and a drain that waits for it.
@Suite("HTTP deferred handlers", .timeLimit(.minutes(1)))
struct HTTPDeferredHandlerTests {
    /// The replies a test's deferred handler holds, to answer them from the test.
    final class Held: Sendable {
        let replies = Mutex<[HTTPDeferredReply]>([])
        var count: Int { replies.withLock { $0.count } }
        func take() -> HTTPDeferredReply? { replies.withLock { $0.isEmpty ? nil : $0.removeFirst() } }
    }

    static func server(
        _ name: String, deferred: @escaping HTTPDeferredHandler, asyncCalls: HTTPImmediateHandlerTests.Calls
    ) async throws -> (EventLoop, HTTPServer, Int) {
        let loop = EventLoop(name: name)
        var router = HTTPRouter()
        router.add(.GET, "/items/{id}", immediate: { _ in nil }, deferred: deferred, handler: { request in
            asyncCalls.count.add(1, ordering: .relaxed)
            return .text("async \(request.pathParameters["id"] ?? "")")
        })
        let server = HTTPServer(loop: loop, router: router, logger: Logger(label: "test.deferred"))
        return (loop, server, try await server.start(host: "127.0.0.1", port: 0))
    }

    @Test func answersNowOrLaterOrDeclinesToTheAsyncHandler() async throws {
        let asyncCalls = HTTPImmediateHandlerTests.Calls()
        let deferredCalls = HTTPImmediateHandlerTests.Calls()
        let loopHolder = Mutex<EventLoop?>(nil)
        let (loop, server, port) = try await Self.server("deferred-test", deferred: { request, reply in
            deferredCalls.count.add(1, ordering: .relaxed)
            let loop = loopHolder.withLock { $0 }!
            loop.preconditionInLoop()
            let id = request.pathParameters["id"] ?? ""
            switch id {
            case "now": reply.respond(.text("deferred now"))
            case "declined-now": reply.decline()
            default:
                // Later, from another turn of the loop.
                Task(executorPreference: loop) {
                    try? await Task.sleep(for: .milliseconds(20))
                    loop.preconditionInLoop()
                    if id == "later" { reply.respond(.text("deferred later")) } else { reply.decline() }
                }
            }
        }, asyncCalls: asyncCalls)
        loopHolder.withLock { $0 = loop }

        for (id, body) in [
            ("now", "deferred now"), ("later", "deferred later"),
            ("declined-now", "async declined-now"), ("declined-later", "async declined-later"),
        ] {
            let response = try await HTTPImmediateHandlerTests.get(port, "/items/\(id)", tag: "")
            #expect(response.status == 200)
            #expect(response.bodyText == body, "\(id)")
            #expect(response.headers.filter { $0.0.lowercased() == "content-length" }.map(\.1) == [String(body.utf8.count)])
        }
        #expect(deferredCalls.count.load(ordering: .relaxed) == 4)
        #expect(asyncCalls.count.load(ordering: .relaxed) == 2)
        #expect(await server.inFlight == 0)
        await server.stop()
        loop.stop()
    }

    /// The reply is given after the client reset its connection: it is dropped, the request is
    /// no longer in flight, and the server goes on serving.
    @Test func anAnswerAfterTheClientLeftIsDropped() async throws {
        let held = Held()
        let asyncCalls = HTTPImmediateHandlerTests.Calls()
        let (loop, server, port) = try await Self.server("deferred-test-2", deferred: { request, reply in
            if request.pathParameters["id"] == "hold" {
                held.replies.withLock { $0.append(reply) }
            } else {
                reply.respond(.text("deferred"))
            }
        }, asyncCalls: asyncCalls)

        for answer in ["respond", "decline"] {
            let connection = try RawHTTPConnection(port: port)
            try connection.send("GET /items/hold HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(await eventually(timeout: .seconds(5)) { held.count == 1 })
            #expect(await server.inFlight == 1)
            connection.close(reset: true)
            try await Task.sleep(for: .milliseconds(50))
            let reply = try #require(held.take())
            await loop.run {
                if answer == "respond" { reply.respond(.text("too late")) } else { reply.decline() }
            }
            #expect(await eventually(timeout: .seconds(5)) { await server.inFlight == 0 }, "\(answer)")
        }
        let after = try await HTTPImmediateHandlerTests.get(port, "/items/other", tag: "")
        #expect(after.bodyText == "deferred")
        await server.stop()
        loop.stop()
    }

    /// A graceful shutdown waits for a deferred answer like for an async handler.
    @Test func aDrainWaitsForTheDeferredAnswer() async throws {
        let held = Held()
        let (loop, server, port) = try await Self.server("deferred-test-3", deferred: { _, reply in
            held.replies.withLock { $0.append(reply) }
        }, asyncCalls: HTTPImmediateHandlerTests.Calls())
        async let response = HTTPImmediateHandlerTests.get(port, "/items/slow", tag: "")
        #expect(await eventually(timeout: .seconds(5)) { held.count == 1 })
        let drained = Task { await server.shutdown(gracePeriod: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(100))
        let reply = try #require(held.take())
        await loop.run { reply.respond(.text("answered while draining")) }
        #expect(try await response.bodyText == "answered while draining")
        await drained.value
        #expect(await server.inFlight == 0)
        loop.stop()
    }
}
