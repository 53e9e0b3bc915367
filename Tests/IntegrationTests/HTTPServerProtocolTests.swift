import Foundation
import Synchronization
import TestSupport
import Testing

@testable import ChatRuntime

/// HTTP/1.1 on the wire: pipelining, the answers the server makes itself (all JSON), request
/// bodies (chunked, too large), HTTP/1.0 and `Expect: 100-continue`. Real sockets on 127.0.0.1.
@Suite("HTTP server protocol", .timeLimit(.minutes(1)))
struct HTTPServerProtocolTests {
    static func errorCode(_ response: RawHTTPResponse) -> String? {
        HTTPServerTests.errorCode(response)
    }

    /// Reads `count` responses from `connection`, in order.
    static func read(_ count: Int, from connection: RawHTTPConnection) throws -> [RawHTTPResponse] {
        try (0..<count).map { _ in try connection.readResponse() }
    }

    @Test func answersPipelinedRequestsInOrderEvenWhenTheFirstIsSlow() async throws {
        let slowStarted = Atomic<Bool>(false)
        let released = Atomic<Bool>(false)
        let fastFinished = Atomic<Int>(0)
        let running = try await HTTPServerTests.start { router in
            router.add(.GET, "/slow") { _ in
                slowStarted.store(true, ordering: .relaxed)
                // Holds until the test releases it (bounded), so later replies are ready first.
                let deadline = ContinuousClock.now + .seconds(10)
                while !released.load(ordering: .relaxed), ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(10)) // polls the release
                }
                return .text("slow")
            }
            router.add(.GET, "/deferred/{n}") { request in
                fastFinished.add(1, ordering: .relaxed)
                return .text("deferred \(request.pathParameters["n"] ?? "")")
            }
            router.add(
                .GET, "/immediate/{n}",
                immediate: { request in
                    fastFinished.add(1, ordering: .relaxed)
                    return .text("immediate \(request.pathParameters["n"] ?? "")")
                }, handler: { _ in .text("unused") })
        }
        let port = running.port
        let connection = try await offloadBlocking {
            let connection = try RawHTTPConnection(port: port)
            // One write: four requests on the wire before any answer.
            try connection.send(
                "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n" + "GET /deferred/1 HTTP/1.1\r\nHost: t\r\n\r\n"
                    + "GET /immediate/2 HTTP/1.1\r\nHost: t\r\n\r\n"
                    + "GET /deferred/3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            return connection
        }
        // The later requests are answered by their handlers while the first still works.
        #expect(await eventually { slowStarted.load(ordering: .relaxed) && fastFinished.load(ordering: .relaxed) == 3 })
        released.store(true, ordering: .relaxed)
        let responses = try await offloadBlocking { try Self.read(4, from: connection) }
        #expect(responses.map(\.bodyText) == ["slow", "deferred 1", "immediate 2", "deferred 3"])
        #expect(responses.last?.header("Connection") == "close")
        #expect(try await offloadBlocking { connection.waitForClose(within: .seconds(5)) })
        #expect(await eventually { await running.server.inFlight == 0 })
        await running.stop()
    }

    @Test func answersMoreRequestsThanThePipelineDepthInOrder() async throws {
        let running = try await HTTPServerTests.start { router in
            router.add(.GET, "/n/{n}") { request in
                // Deferred, with a little work, so replies queue up behind each other.
                try? await Task.sleep(for: .milliseconds(1))
                return .text(request.pathParameters["n"] ?? "")
            }
        }
        let port = running.port
        let count = ServerConnection.maxPipelined * 3
        let bodies = try await offloadBlocking {
            let connection = try RawHTTPConnection(port: port)
            try connection.send((0..<count).map { "GET /n/\($0) HTTP/1.1\r\nHost: t\r\n\r\n" }.joined())
            return try Self.read(count, from: connection).map(\.bodyText)
        }
        #expect(bodies == (0..<count).map(String.init))
        #expect(await eventually { await running.server.inFlight == 0 })
        await running.stop()
    }

    @Test func acceptsAbsoluteFormTargets() async throws {
        let running = try await HTTPServerTests.start { router in
            router.add(.GET, "/items/{id}") { request in .text("\(request.pathParameters["id"] ?? "") \(request.query)")
            }
        }
        let absolute = try await HTTPServerTests.exchange(
            running.port, "GET http://t:80/items/7?a=b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(absolute.status == 200)
        #expect(absolute.bodyText == #"7 ["a": "b"]"#)
        let asterisk = try await HTTPServerTests.exchange(
            running.port, "OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(asterisk.status == 404)
        #expect(Self.errorCode(asterisk) == "not_found")
        await running.stop()
    }

    @Test func answersMethodsItDoesNotImplementWithJSON() async throws {
        let running = try await HTTPServerTests.start { router in
            router.add(.GET, "/items/{id}") { _ in .text("item") }
        }
        let port = running.port

        // A token http-parser does not know: like a method without a route, then the
        // connection closes (the parser cannot frame the rest of such a request).
        let unknown = try await HTTPServerTests.exchange(
            port, "QUERY /items/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}")
        #expect(unknown.status == 405)
        #expect(unknown.header("Content-Type") == "application/json")
        #expect(unknown.header("Allow") == "GET, HEAD")
        #expect(Self.errorCode(unknown) == "method_not_allowed")
        #expect(unknown.header("Connection") == "close")
        // Its method in pieces: answered once the target has arrived.
        let (pieces, closed) = try await offloadBlocking {
            let connection = try RawHTTPConnection(port: port)
            try connection.send("FO")
            #expect(!connection.waitForClose(within: .milliseconds(100)))
            try connection.send("O /nothing HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try connection.readResponse()
            return (response, connection.waitForClose(within: .seconds(5)))
        }
        #expect(pieces.status == 404)
        #expect(Self.errorCode(pieces) == "not_found")
        #expect(closed)
        // Not a token at all: malformed.
        let garbage = try await HTTPServerTests.exchange(port, "G\u{1}T / HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(garbage.status == 400)
        #expect(Self.errorCode(garbage) == "bad_request")

        // TRACE is routed like a method without a route: 405 with Allow on a known path...
        let trace = try await HTTPServerTests.exchange(
            port, "TRACE /items/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(trace.status == 405)
        #expect(trace.header("Allow") == "GET, HEAD")
        #expect(Self.errorCode(trace) == "method_not_allowed")
        // ...404 elsewhere.
        let traceElsewhere = try await HTTPServerTests.exchange(
            port, "TRACE /nothing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(traceElsewhere.status == 404)
        #expect(Self.errorCode(traceElsewhere) == "not_found")

        let connect = try await HTTPServerTests.exchange(port, "CONNECT example.com:443 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(connect.status == 501)
        #expect(Self.errorCode(connect) == "not_implemented")

        let afterwards = try await HTTPServerTests.exchange(
            port, "GET /items/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(afterwards.bodyText == "item")
        await running.stop()
    }

    @Test func answersMalformedRequestsWithJSON() async throws {
        let running = try await HTTPServerTests.start { router in
            router.add(.GET, "/") { _ in .text("root") }
        }
        let port = running.port
        let malformed = [
            "GET / HTTP/A.1\r\nHost: t\r\n\r\n", // bad version
            "GET / HTTP/2.0\r\nHost: t\r\n\r\n", // another major version
            "GET /\r\nHost: t\r\n\r\n", // HTTP/0.9
            "GET  /  HTTP/1.1\r\nHost: t\r\n\r\n", // runs of spaces
            "GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n", // bad header line
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: x1\r\n\r\n", // bad length
            // Both framings: a request smuggling vector.
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ]
        for raw in malformed {
            let response = try await HTTPServerTests.exchange(port, raw)
            #expect(response.status == 400, "\(raw.debugDescription)")
            #expect(response.header("Content-Type") == "application/json")
            #expect(Self.errorCode(response) == "bad_request", "\(raw.debugDescription)")
            #expect(response.header("Connection") == "close")
        }
        let target = try await HTTPServerTests.exchange(port, "GET example HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(target.status == 400)
        #expect(Self.errorCode(target) == "bad_request")
        let normal = try await HTTPServerTests.exchange(port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(normal.bodyText == "root")
        await running.stop()
    }

    @Test func answersAnOversizedBodyWith413ThatTheClientReads() async throws {
        let running = try await HTTPServerTests.start(limits: HTTPServerLimits(maxBodySize: 1024)) { router in
            router.add(.POST, "/upload") { request in .text("\(request.body.count)") }
        }
        let port = running.port
        // Far more than the limit, and than the socket buffers hold: the client is still sending
        // when the answer comes, and must read the answer, not a reset.
        let body = [UInt8](repeating: UInt8(ascii: "a"), count: 4 * 1024 * 1024)
        let response = try await offloadBlocking { () -> RawHTTPResponse in
            let connection = try RawHTTPConnection(port: port)
            try connection.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.count)\r\n\r\n")
            try connection.send(body)
            return try connection.readResponse()
        }
        #expect(response.status == 413)
        #expect(response.header("Content-Type") == "application/json")
        #expect(Self.errorCode(response) == "body_too_large")
        #expect(response.header("Connection") == "close")
        await running.stop()
    }

    @Test func readsChunkedBodiesAndBoundsThem() async throws {
        let running = try await HTTPServerTests.start(limits: HTTPServerLimits(maxBodySize: 16)) { router in
            router.add(.POST, "/echo") { request in .text(String(decoding: request.body, as: UTF8.self)) }
        }
        let port = running.port
        let (echoed, again) = try await offloadBlocking { () -> (RawHTTPResponse, RawHTTPResponse) in
            let connection = try RawHTTPConnection(port: port)
            try connection.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            try connection.send("6\r\n world\r\n0\r\n\r\n")
            let echoed = try connection.readResponse()
            // The connection stays usable after a chunked body.
            try connection.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok")
            return (echoed, try connection.readResponse())
        }
        #expect(echoed.status == 200)
        #expect(echoed.bodyText == "hello world")
        #expect(again.bodyText == "ok")

        let tooLarge = try await HTTPServerTests.exchange(
            port,
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n1\r\nx\r\n0\r\n\r\n"
        )
        #expect(tooLarge.status == 413)
        #expect(Self.errorCode(tooLarge) == "body_too_large")

        let gzip = try await HTTPServerTests.exchange(
            port, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n")
        #expect(gzip.status == 400)
        #expect(Self.errorCode(gzip) == "unsupported_transfer_coding")
        await running.stop()
    }

    @Test func closesHTTP10ConnectionsUnlessAskedToKeepThemAlive() async throws {
        let running = try await HTTPServerTests.start { router in
            router.add(.GET, "/n/{n}") { request in .text(request.pathParameters["n"] ?? "") }
        }
        let port = running.port
        let (plain, closed, kept, second) = try await offloadBlocking {
            let connection = try RawHTTPConnection(port: port)
            try connection.send("GET /n/1 HTTP/1.0\r\n\r\n")
            let plain = try connection.readResponse()
            let closed = connection.waitForClose(within: .seconds(5))
            let keepAlive = try RawHTTPConnection(port: port)
            try keepAlive.send("GET /n/2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let kept = try keepAlive.readResponse()
            try keepAlive.send("GET /n/3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            return (plain, closed, kept, try keepAlive.readResponse())
        }
        #expect(plain.bodyText == "1")
        #expect(plain.header("Connection") == "close")
        #expect(closed)
        #expect(kept.bodyText == "2")
        #expect(kept.header("Connection") == "keep-alive")
        #expect(second.bodyText == "3")
        await running.stop()
    }

    @Test func answersExpectContinueBeforeTheBody() async throws {
        let running = try await HTTPServerTests.start { router in
            router.add(.POST, "/echo") { request in .text(String(decoding: request.body, as: UTF8.self)) }
        }
        let port = running.port
        let (interim, final) = try await offloadBlocking { () -> (RawHTTPResponse, RawHTTPResponse) in
            let connection = try RawHTTPConnection(port: port)
            try connection.send(
                "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            let interim = try connection.readResponse(hasBody: false)
            try connection.send("hello")
            return (interim, try connection.readResponse())
        }
        #expect(interim.status == 100)
        #expect(final.status == 200)
        #expect(final.bodyText == "hello")

        let unsupported = try await HTTPServerTests.exchange(
            port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\nhello")
        #expect(unsupported.status == 417)
        #expect(Self.errorCode(unsupported) == "expectation_failed")
        await running.stop()
    }

    @Test func dropsHeadersThatWouldInjectLines() async throws {
        let running = try await HTTPServerTests.start { router in
            router.add(.GET, "/") { _ in
                HTTPResponse(
                    status: 200,
                    headers: [("X-Good", "yes"), ("X-Bad", "a\r\nX-Injected: 1"), ("Content-Length", "99")],
                    body: Array("ok".utf8))
            }
        }
        let response = try await HTTPServerTests.exchange(
            running.port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(response.header("X-Good") == "yes")
        #expect(response.header("X-Bad") == nil)
        #expect(response.header("X-Injected") == nil)
        #expect(response.header("Content-Length") == "2")
        #expect(response.bodyText == "ok")
        await running.stop()
    }
}
