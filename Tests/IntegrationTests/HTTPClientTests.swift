import Foundation
import Logging
import Testing

import TestSupport

@testable import ChatRuntime

@Suite("HTTPClient", .timeLimit(.minutes(1)))
struct HTTPClientTests {
    static let logger = Logger(label: "test.http-client")

    /// A peer server that tells each request which connection (peer port) it came on.
    static func startPeer(on loop: EventLoop) async throws -> (HTTPServer, Int) {
        var router = HTTPRouter()
        router.add(.GET, "/v1/items/{id}") { request in
            .json(["id": request.pathParameters["id"] ?? "", "q": request.query["q"] ?? "", "host": request.headers["host"] ?? ""])
        }
        router.add(.POST, "/v1/echo") { request in
            HTTPResponse(
                status: 201,
                headers: [("Content-Type", request.headers["content-type"] ?? "none"), ("X-Length", request.headers["content-length"] ?? "none")],
                body: request.body)
        }
        router.add(.GET, "/v1/connection") { request in .text("\(request.remotePort)") }
        let server = HTTPServer(loop: loop, router: router, logger: logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        return (server, port)
    }

    static func expectFailure(
        _ expected: HTTPClientError.Code, _ body: () async throws(HTTPClientError) -> HTTPClientResponse,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        do {
            let response = try await body()
            Issue.record("expected \(expected), got status \(response.status)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == expected, "\(error)", sourceLocation: sourceLocation)
        }
    }

    static func outcome(
        _ body: () async throws(HTTPClientError) -> HTTPClientResponse
    ) async -> Result<HTTPClientResponse, HTTPClientError> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    @Test func roundTripsGetAndPostWithServerAndClientOnOneLoop() async throws {
        let loop = EventLoop(name: "http-client-shared")
        let (server, port) = try await Self.startPeer(on: loop)
        let client = try HTTPClient(loop: loop, baseURL: "http://127.0.0.1:\(port)/v1/", logger: Self.logger)

        let get = try await client.execute(method: .GET, path: "/items/7?q=a%20b", timeout: .seconds(5))
        #expect(get.status == 200)
        #expect(get.headers["content-type"] == "application/json")
        let fields = try JSONDecoder().decode([String: String].self, from: Data(get.body))
        #expect(fields == ["id": "7", "q": "a b", "host": "127.0.0.1:\(port)"])

        let payload = Array(#"{"hello":"world"}"#.utf8)
        let post = try await client.execute(method: .POST, path: "/echo", headers: [("X-Trace", "1")], body: payload, timeout: .seconds(5))
        #expect(post.status == 201)
        #expect(post.body == payload)
        #expect(post.headers["Content-Type"] == "application/json")
        #expect(post.headers["x-length"] == "\(payload.count)")

        let missing = try await client.execute(method: .GET, path: "/nothing", timeout: .seconds(5))
        #expect(missing.status == 404)

        await client.close()
        await server.stop()
        loop.stop()
    }

    @Test func reusesKeepAliveConnections() async throws {
        let serverLoop = EventLoop(name: "http-client-peer")
        let clientLoop = EventLoop(name: "http-client")
        let (server, port) = try await Self.startPeer(on: serverLoop)
        let client = try HTTPClient(loop: clientLoop, baseURL: "http://127.0.0.1:\(port)", logger: Self.logger)
        var peerPorts: Set<String> = []
        for _ in 0..<10 {
            let response = try await client.execute(method: .GET, path: "/v1/connection", timeout: .seconds(5))
            #expect(response.status == 200)
            peerPorts.insert(String(decoding: response.body, as: UTF8.self))
        }
        #expect(peerPorts.count == 1, "sequential requests share one connection: \(peerPorts)")
        await client.close()
        await server.stop()
        serverLoop.stop()
        clientLoop.stop()
    }

    @Test func thousandConcurrentRequestsStayWithinThePool() async throws {
        let serverLoop = EventLoop(name: "http-client-peer")
        let clientLoop = EventLoop(name: "http-client")
        let (server, port) = try await Self.startPeer(on: serverLoop)
        let client = try HTTPClient(loop: clientLoop, baseURL: "http://127.0.0.1:\(port)", maxConnections: 8, logger: Self.logger)
        let peerPorts = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<1000 {
                group.addTask {
                    let response = try await client.execute(method: .GET, path: "/v1/connection", timeout: .seconds(30))
                    guard response.status == 200 else { throw HTTPClientError(code: .invalidResponse, message: "status \(response.status)") }
                    return String(decoding: response.body, as: UTF8.self)
                }
            }
            var ports: [String] = []
            for try await port in group { ports.append(port) }
            return ports
        }
        #expect(peerPorts.count == 1000)
        let connections = Set(peerPorts).count
        #expect(connections >= 1 && connections <= 8, "\(connections) connections")
        await client.close()
        await server.stop()
        serverLoop.stop()
        clientLoop.stop()
    }

    @Test func timesOutAgainstASilentServerAndRecovers() async throws {
        let silent = try ScriptedTCPServer(behavior: .neverAnswer)
        let loop = EventLoop(name: "http-client")
        let client = try HTTPClient(loop: loop, baseURL: "http://127.0.0.1:\(silent.port)", logger: Self.logger)
        await Self.expectFailure(.timeout) { () throws(HTTPClientError) in
            try await client.execute(method: .GET, path: "/", timeout: .milliseconds(200))
        }
        // The cancelled request reset its connection: the next one connects again, and times out again.
        await Self.expectFailure(.timeout) { () throws(HTTPClientError) in
            try await client.execute(method: .POST, path: "/", body: [1, 2, 3], timeout: .milliseconds(200))
        }
        #expect(silent.requestsSeen == 2)
        #expect(silent.acceptedConnections == 2)
        await client.close()
        silent.stop()
        loop.stop()
    }

    @Test func reportsARefusedConnection() async throws {
        let port = try ScriptedTCPServer.unusedPort()
        let loop = EventLoop(name: "http-client")
        let client = try HTTPClient(loop: loop, baseURL: "http://127.0.0.1:\(port)", logger: Self.logger)
        await Self.expectFailure(.connectFailed) { () throws(HTTPClientError) in
            try await client.execute(method: .GET, path: "/", timeout: .seconds(5))
        }
        await client.close()
        loop.stop()
    }

    @Test func reportsAServerThatClosesMidResponseOrAnswersGarbage() async throws {
        let truncating = try ScriptedTCPServer(behavior: .answerThenClose("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"))
        let garbage = try ScriptedTCPServer(behavior: .answerThenClose("this is not http\r\n\r\n"))
        let loop = EventLoop(name: "http-client")
        let truncatingClient = try HTTPClient(loop: loop, baseURL: "http://127.0.0.1:\(truncating.port)", logger: Self.logger)
        let garbageClient = try HTTPClient(loop: loop, baseURL: "http://127.0.0.1:\(garbage.port)", logger: Self.logger)
        await Self.expectFailure(.connectionClosed) { () throws(HTTPClientError) in
            try await truncatingClient.execute(method: .GET, path: "/", timeout: .seconds(5))
        }
        await Self.expectFailure(.invalidResponse) { () throws(HTTPClientError) in
            try await garbageClient.execute(method: .GET, path: "/", timeout: .seconds(5))
        }
        await truncatingClient.close()
        await garbageClient.close()
        truncating.stop()
        garbage.stop()
        loop.stop()
    }

    @Test func closeAndCancellationEndRequestsInFlight() async throws {
        let silent = try ScriptedTCPServer(behavior: .neverAnswer)
        let loop = EventLoop(name: "http-client")
        let client = try HTTPClient(loop: loop, baseURL: "http://127.0.0.1:\(silent.port)", maxConnections: 1, logger: Self.logger)

        let cancelled = Task {
            await Self.outcome { () throws(HTTPClientError) in try await client.execute(method: .GET, path: "/cancel", timeout: .seconds(30)) }
        }
        #expect(await eventually { silent.requestsSeen == 1 })
        cancelled.cancel()
        await Self.expectFailure(.cancelled) { () throws(HTTPClientError) in try await cancelled.value.get() }

        // One on the wire, one queued behind it on the single connection: close fails both.
        let first = Task {
            await Self.outcome { () throws(HTTPClientError) in try await client.execute(method: .GET, path: "/1", timeout: .seconds(30)) }
        }
        let second = Task {
            await Self.outcome { () throws(HTTPClientError) in try await client.execute(method: .GET, path: "/2", timeout: .seconds(30)) }
        }
        #expect(await eventually { silent.requestsSeen == 2 })
        await client.close()
        await Self.expectFailure(.closed) { () throws(HTTPClientError) in try await first.value.get() }
        await Self.expectFailure(.closed) { () throws(HTTPClientError) in try await second.value.get() }
        await Self.expectFailure(.closed) { () throws(HTTPClientError) in
            try await client.execute(method: .GET, path: "/", timeout: .seconds(1))
        }
        silent.stop()
        loop.stop()
    }

    @Test func rejectsBadURLsAndPaths() async throws {
        let loop = EventLoop(name: "http-client")
        #expect(throws: HTTPClientError.self) { _ = try HTTPClient(loop: loop, baseURL: "ftp://x", logger: Self.logger) }
        let client = try HTTPClient(loop: loop, baseURL: "http://127.0.0.1:1", logger: Self.logger)
        await Self.expectFailure(.invalidURL) { () throws(HTTPClientError) in
            try await client.execute(method: .GET, path: "no-slash", timeout: .seconds(1))
        }
        await Self.expectFailure(.invalidURL) { () throws(HTTPClientError) in
            try await client.execute(method: .GET, path: "/a b", timeout: .seconds(1))
        }
        await client.close()
        loop.stop()
    }
}
