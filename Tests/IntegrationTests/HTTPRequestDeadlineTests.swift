import Foundation
import TestSupport
import Testing

@testable import ChatRuntime

/// The whole-request deadline (``ServerConnection``): what the per-byte read timeout cannot
/// stop, and what the deadline must leave alone.
@Suite("HTTP request deadline", .timeLimit(.minutes(1)))
struct HTTPRequestDeadlineTests {
    @Test func closesAClientThatDripsItsRequestFasterThanTheReadTimeout() async throws {
        // A byte every 100 ms never trips the 5 s read timeout; only the 1 s deadline can end it.
        let running = try await HTTPServerTests.start(
            limits: HTTPServerLimits(readTimeout: .seconds(5), requestDeadline: .seconds(1))
        ) { router in
            router.add(.GET, "/") { _ in .text("root") }
        }
        let port = running.port
        let closedAfterBytes = try await offloadBlocking { () -> Int? in
            let connection = try RawHTTPConnection(port: port)
            try connection.send("GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            for sent in 1...40 { // 4 s at most: well past the deadline, under the read timeout
                if connection.waitForClose(within: .milliseconds(100)) { return sent }
                guard (try? connection.send("a")) != nil else { return sent }
            }
            return nil
        }
        #expect(closedAfterBytes != nil, "a dripping client was still connected after 40 bytes")
        #expect(await eventually { await running.server.openConnections == 0 })
        await running.stop()
    }

    @Test func keepAliveRequestsEachGetTheirOwnDeadline() async throws {
        // Four requests a second apart on one connection: 3 s in all, past a 2 s deadline that
        // restarts after every reply.
        let running = try await HTTPServerTests.start(
            limits: HTTPServerLimits(readTimeout: .seconds(5), requestDeadline: .seconds(2))
        ) { router in
            router.add(.GET, "/n/{n}") { request in .text(request.pathParameters["n"] ?? "") }
        }
        let port = running.port
        let bodies = try await offloadBlocking { () -> [String] in
            let connection = try RawHTTPConnection(port: port)
            var bodies: [String] = []
            for index in 0..<4 {
                // The client's pace is the scenario: a second between requests.
                if index > 0 { Thread.sleep(forTimeInterval: 1) }
                try connection.send("GET /n/\(index) HTTP/1.1\r\nHost: t\r\n\r\n")
                bodies.append(try connection.readResponse().bodyText)
            }
            return bodies
        }
        #expect(bodies == ["0", "1", "2", "3"])
        await running.stop()
    }

    @Test func aHandlerSlowerThanTheDeadlineStillAnswers() async throws {
        // The clock stops while the handler works: a 1.5 s handler under a 300 ms deadline.
        let running = try await HTTPServerTests.start(
            limits: HTTPServerLimits(readTimeout: .seconds(5), requestDeadline: .milliseconds(300))
        ) { router in
            router.add(.GET, "/slow") { _ in
                // The slow handler under test.
                try? await Task.sleep(for: .milliseconds(1500))
                return .text("late but whole")
            }
        }
        let response = try await HTTPServerTests.exchange(running.port, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(response.status == 200)
        #expect(response.bodyText == "late but whole")
        await running.stop()
    }

    @Test func forgetsConnectionsHoweverTheyEnd() async throws {
        let running = try await HTTPServerTests.start(
            limits: HTTPServerLimits(readTimeout: .seconds(5), requestDeadline: .milliseconds(500))
        ) { router in
            router.add(.GET, "/") { _ in .text("root") }
        }
        let port = running.port
        let silentClosed = try await offloadBlocking { () -> Bool in
            // Served then closed by the client; reset mid-request; Connection: close; and one
            // left silent until the deadline closes it.
            let served = try RawHTTPConnection(port: port)
            try served.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            _ = try served.readResponse()
            served.close()
            let reset = try RawHTTPConnection(port: port)
            try reset.send("GET / HTT")
            reset.close(reset: true)
            let closing = try RawHTTPConnection(port: port)
            try closing.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            _ = try closing.readResponse()
            let silent = try RawHTTPConnection(port: port)
            return silent.waitForClose(within: .seconds(5))
        }
        #expect(silentClosed)
        #expect(await eventually { await running.server.openConnections == 0 })
        let after = try await HTTPServerTests.exchange(port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(after.bodyText == "root")
        await running.stop()
    }
}
