import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import ChatRuntime

@Suite("HTTPServer", .timeLimit(.minutes(1)))
struct HTTPServerTests {
    /// A server on its own loop, bound to 127.0.0.1 on a free port.
    struct Running {
        let loop: EventLoop
        let server: HTTPServer
        let port: Int

        func stop() async {
            await server.stop()
            loop.stop()
        }
    }

    static func start(limits: HTTPServerLimits = .init(), _ configure: (inout HTTPRouter) -> Void) async throws
        -> Running
    {
        let loop = EventLoop(name: "http-server-test")
        var router = HTTPRouter()
        configure(&router)
        let server = HTTPServer(loop: loop, router: router, limits: limits, logger: Logger(label: "test.http-server"))
        let port = try await server.start(host: "127.0.0.1", port: 0)
        return Running(loop: loop, server: server, port: port)
    }

    /// Sends `raw` on a fresh connection and reads one response.
    static func exchange(_ port: Int, _ raw: String, hasBody: Bool = true) async throws -> RawHTTPResponse {
        try await offloadBlocking {
            let connection = try RawHTTPConnection(port: port)
            try connection.send(raw)
            return try connection.readResponse(hasBody: hasBody)
        }
    }

    static func errorCode(_ response: RawHTTPResponse) -> String? {
        let decoded = try? JSONDecoder().decode([String: [String: String]].self, from: Data(response.body))
        return decoded?["error"]?["code"]
    }

    struct Echo: Codable, Equatable {
        var id: String
        var n: Int
        var tag: String?
        var auth: String?
        var remote: String
    }

    @Test func routesRequestsAndCarriesJSONBodies() async throws {
        let running = try await Self.start { router in
            router.add(.POST, "/v1/echo/{id}") { request in
                struct Input: Decodable { var n: Int }
                guard let input = try? JSONDecoder().decode(Input.self, from: Data(request.body)) else {
                    return .error(status: 400, code: "bad_json", message: "body is not JSON")
                }
                return .json(
                    Echo(
                        id: request.pathParameters["id"] ?? "", n: input.n, tag: request.query["tag"],
                        auth: request.headers["authorization"], remote: request.remoteAddress), status: 201)
            }
        }
        let body = #"{"n":5}"#
        let response = try await Self.exchange(
            running.port,
            "POST /v1/echo/a%20b?tag=x+y HTTP/1.1\r\nHost: t\r\nAUTHORIZATION: Bearer abc\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        )
        #expect(response.status == 201)
        #expect(response.header("content-type") == "application/json")
        let echo = try JSONDecoder().decode(Echo.self, from: Data(response.body))
        #expect(echo == Echo(id: "a b", n: 5, tag: "x y", auth: "Bearer abc", remote: "127.0.0.1"))
        await running.stop()
    }

    @Test func answersRoutingAndLimitErrorsWithJSON() async throws {
        let running = try await Self.start(limits: HTTPServerLimits(maxBodySize: 1024)) { router in
            router.add(.GET, "/items/{id}") { _ in .text("item") }
            router.add(.POST, "/items/{id}") { request in .text("\(request.body.count)") }
        }
        let port = running.port

        let notFound = try await Self.exchange(
            port, "GET /nothing/here HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(notFound.status == 404)
        #expect(notFound.header("Content-Type") == "application/json")
        #expect(Self.errorCode(notFound) == "not_found")

        let notAllowed = try await Self.exchange(
            port, "DELETE /items/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(notAllowed.status == 405)
        #expect(notAllowed.header("Allow") == "GET, HEAD, POST")
        #expect(Self.errorCode(notAllowed) == "method_not_allowed")

        let badPath = try await Self.exchange(port, "GET /items/%zz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(badPath.status == 400)
        #expect(Self.errorCode(badPath) == "invalid_path")

        let badQuery = try await Self.exchange(
            port, "GET /items/1?q=%G0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(badQuery.status == 400)
        #expect(Self.errorCode(badQuery) == "invalid_query")

        // Under the limit: served. Over it: 413 with the JSON error body, never a crash.
        let small = String(repeating: "a", count: 1000)
        let accepted = try await Self.exchange(
            port, "POST /items/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n\(small)")
        #expect(accepted.status == 200)
        #expect(accepted.bodyText == "1000")
        let large = String(repeating: "a", count: 4096)
        let tooLarge = try await Self.exchange(
            port, "POST /items/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n\(large)")
        #expect(tooLarge.status == 413)
        #expect(tooLarge.header("Content-Type") == "application/json")
        #expect(Self.errorCode(tooLarge) == "body_too_large")

        let afterwards = try await Self.exchange(port, "GET /items/2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(afterwards.bodyText == "item")
        await running.stop()
    }

    @Test func rejectsOversizedHeaders() async throws {
        let running = try await Self.start(limits: HTTPServerLimits(maxHeadersSize: 1024)) { router in
            router.add(.GET, "/") { _ in .text("root") }
        }
        let port = running.port
        let huge = String(repeating: "x", count: 8 * 1024)
        let rejected = try await offloadBlocking {
            let connection = try RawHTTPConnection(port: port)
            try connection.send("GET / HTTP/1.1\r\nHost: t\r\nX-Huge: \(huge)\r\n\r\n")
            return try connection.readResponse()
        }
        #expect(rejected.status == 400)
        #expect(rejected.header("Content-Type") == "application/json")
        #expect(Self.errorCode(rejected) == "headers_too_large")
        #expect(rejected.header("Connection") == "close")
        let normal = try await Self.exchange(port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(normal.bodyText == "root")
        await running.stop()
    }

    @Test func closesSlowAndIdleClientsAfterTheReadTimeout() async throws {
        let running = try await Self.start(limits: HTTPServerLimits(readTimeout: .milliseconds(300))) { router in
            router.add(.GET, "/") { _ in .text("root") }
        }
        let port = running.port
        let (slowClosed, idleClosed, idleAnswer) = try await offloadBlocking {
            // Half a request, then silence (slowloris).
            let slow = try RawHTTPConnection(port: port)
            try slow.send("GET / HTTP/1.1\r\nHost: t\r\n")
            // A served keep-alive connection, then silence.
            let idle = try RawHTTPConnection(port: port)
            try idle.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            let answer = try idle.readResponse()
            return (slow.waitForClose(within: .seconds(5)), idle.waitForClose(within: .seconds(5)), answer.bodyText)
        }
        #expect(slowClosed)
        #expect(idleClosed)
        #expect(idleAnswer == "root")
        await running.stop()
    }

    @Test func keepsServingAfterClientsLeaveBeforeTheirReply() async throws {
        let startedHandlers = Atomic<Int>(0)
        let finishedHandlers = Atomic<Int>(0)
        // The handlers hold until the test releases them (bounded), so both clients are surely
        // gone before their replies, however slowly a loaded machine runs.
        let released = Atomic<Bool>(false)
        let running = try await Self.start { router in
            router.add(.GET, "/slow") { _ in
                startedHandlers.add(1, ordering: .relaxed)
                let deadline = ContinuousClock.now + .seconds(10)
                while !released.load(ordering: .relaxed), ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(10)) // polls the release
                }
                finishedHandlers.add(1, ordering: .relaxed)
                return .text(String(repeating: "z", count: 64 * 1024))
            }
            router.add(.GET, "/fast") { _ in .text("fast") }
        }
        let port = running.port
        let (polite, rude) = try await offloadBlocking {
            let polite = try RawHTTPConnection(port: port)
            try polite.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            let rude = try RawHTTPConnection(port: port)
            try rude.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            return (polite, rude)
        }
        // One client closes gracefully, one resets, both once their handlers run and before
        // they answer.
        try #require(await eventually { startedHandlers.load(ordering: .relaxed) == 2 })
        try await offloadBlocking {
            polite.close()
            rude.close(reset: true)
        }
        released.store(true, ordering: .relaxed)
        #expect(await eventually { finishedHandlers.load(ordering: .relaxed) == 2 })
        #expect(await eventually { await running.server.inFlight == 0 })
        let after = try await Self.exchange(port, "GET /fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(after.bodyText == "fast")
        await running.stop()
    }

    @Test func stopWhileHandlersRunDropsTheirReplies() async throws {
        let finishedHandlers = Atomic<Int>(0)
        // The handler holds until the test releases it (bounded), so `inFlight == 1` is
        // observable however slowly a loaded machine polls.
        let released = Atomic<Bool>(false)
        let running = try await Self.start { router in
            router.add(.GET, "/slow") { _ in
                let deadline = ContinuousClock.now + .seconds(10)
                while !released.load(ordering: .relaxed), ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(10)) // polls the release
                }
                finishedHandlers.add(1, ordering: .relaxed)
                return .text("late")
            }
        }
        let port = running.port
        let connection = try await offloadBlocking {
            let connection = try RawHTTPConnection(port: port)
            try connection.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            return connection
        }
        #expect(await eventually { await running.server.inFlight == 1 })
        await running.server.stop()
        let closed = try await offloadBlocking { connection.waitForClose(within: .seconds(5)) }
        #expect(closed)
        released.store(true, ordering: .relaxed)
        #expect(await eventually { finishedHandlers.load(ordering: .relaxed) == 1 })
        #expect(await eventually { await running.server.inFlight == 0 })
        await running.server.stop() // idempotent
        running.loop.stop()
    }

    @Test func servesTwoHundredConcurrentRequests() async throws {
        let active = AnnotatedMutex((now: 0, peak: 0))
        let running = try await Self.start { router in
            router.add(.GET, "/work/{n}") { request in
                active.withLock {
                    $0.now += 1; $0.peak = max($0.peak, $0.now)
                }
                // Work that takes a while, so requests overlap.
                try? await Task.sleep(for: .milliseconds(20))
                active.withLock { $0.now -= 1 }
                return .text(request.pathParameters["n"] ?? "")
            }
        }
        let port = running.port
        let count = 200
        let bodies = try await offloadBlocking {
            // Every request is on the wire before any answer is read.
            let connections = try (0..<count).map { _ in try RawHTTPConnection(port: port) }
            for (index, connection) in connections.enumerated() {
                try connection.send("GET /work/\(index) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            }
            return try connections.map { try $0.readResponse().bodyText }
        }
        #expect(bodies == (0..<count).map(String.init))
        #expect(active.withLock { $0.peak } > 1)
        #expect(await running.server.inFlight == 0)
        await running.stop()
    }

    @Test func answersHeadWithTheLengthAndNoBody() async throws {
        let running = try await Self.start { router in
            router.add(.GET, "/doc") { _ in .text("0123456789") }
        }
        let port = running.port
        let (head, get) = try await offloadBlocking {
            let connection = try RawHTTPConnection(port: port)
            try connection.send("HEAD /doc HTTP/1.1\r\nHost: t\r\n\r\n")
            let head = try connection.readResponse(hasBody: false)
            // Same connection: a stray body after the HEAD answer would corrupt this response.
            try connection.send("GET /doc HTTP/1.1\r\nHost: t\r\n\r\n")
            return (head, try connection.readResponse())
        }
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "10")
        #expect(get.status == 200)
        #expect(get.bodyText == "0123456789")
        await running.stop()
    }

    @Test func failsToBindATakenPort() async throws {
        let first = try await Self.start { _ in }
        let loop = EventLoop(name: "http-server-second")
        let second = HTTPServer(loop: loop, router: HTTPRouter(), logger: Logger(label: "test.http-server"))
        await #expect(throws: HTTPServerError.self) {
            _ = try await second.start(host: "127.0.0.1", port: first.port)
        }
        await second.stop()
        loop.stop()
        await first.stop()
    }

    @Test func gracefulShutdownAnswersInFlightRequestsThenRefuses() async throws {
        // The handler holds until the test releases it (bounded), so the request is surely in
        // flight when the drain starts, however slowly a loaded machine polls.
        let released = Atomic<Bool>(false)
        let running = try await Self.start { router in
            router.add(.GET, "/slow") { _ in
                let deadline = ContinuousClock.now + .seconds(10)
                while !released.load(ordering: .relaxed), ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(10)) // polls the release
                }
                return .text("done")
            }
        }
        let port = running.port
        let connection = try await offloadBlocking {
            let connection = try RawHTTPConnection(port: port)
            try connection.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            return connection
        }
        #expect(await eventually { await running.server.inFlight == 1 })
        let server = running.server
        let drain = Task { await server.shutdown(gracePeriod: .seconds(10)) }
        // Draining: the listener is closed, new connections are refused.
        #expect(await eventually { (try? await offloadBlocking { try RawHTTPConnection(port: port) }) == nil })
        released.store(true, ordering: .relaxed)
        let response = try await offloadBlocking { try connection.readResponse() }
        await drain.value
        #expect(response.status == 200)
        #expect(response.bodyText == "done")
        #expect(response.header("Connection") == "close")
        await #expect(throws: RawSocketError.self) {
            _ = try await offloadBlocking { try RawHTTPConnection(port: port) }
        }
        running.loop.stop()
    }
}
