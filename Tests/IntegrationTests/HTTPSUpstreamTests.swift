import Foundation
import Logging
import StubUpstream
import Testing
import TestSupport

@testable import ChatRuntime

/// HTTPS to upstream: the stub upstream behind a TLS terminator (socat with OpenSSL) whose
/// certificate a test CA made at test time signed for `localhost`. Reads work with that CA, keep
/// their connection, and survive a closed one; another CA, a name the certificate does not
/// carry, or a plain-HTTP server fail as TLS errors and nothing goes out in plain text.
@Suite("HTTPS upstream", .serialized, .timeLimit(.minutes(2)))
struct HTTPSUpstreamTests {
    static let logger = Logger(label: "test.https-upstream")

    final class Fixture: Sendable {
        let loop: EventLoop
        let stub: StubUpstream
        let stubPort: Int
        let certificates: TestCertificates
        let terminator: TLSTerminator

        init(idleTimeout: Duration? = nil) async throws {
            loop = EventLoop(name: "https-upstream")
            stub = StubUpstream(settings: .init(chats: 20, participantsPerChat: 2, maxBatch: 5), loop: loop, logger: HTTPSUpstreamTests.logger)
            stubPort = try await stub.start(port: 0)
            certificates = try TestCertificates.make()
            terminator = try await TLSTerminator.start(backendPort: stubPort, certificates: certificates, idleTimeout: idleTimeout)
        }

        func client(host: String = "localhost", caFile: String? = nil) throws -> HTTPClient {
            let tls = try TLSClientContext(caFile: caFile ?? certificates.caFile)
            return try HTTPClient(loop: loop, baseURL: "https://\(host):\(terminator.port)", tls: tls, logger: HTTPSUpstreamTests.logger)
        }

        func stubRequests() async -> Int { await stub.statistics.totalRequests }

        func close() async {
            terminator.stop()
            await stub.shutdown()
            loop.stop()
            certificates.remove()
        }
    }

    static func tlsFailure(_ body: () async throws(HTTPClientError) -> HTTPClientResponse) async -> HTTPClientError? {
        do {
            let response = try await body()
            Issue.record("expected a TLS failure, got status \(response.status)")
            return nil
        } catch {
            return error
        }
    }

    @Test func readsWorkWithTheTestCAOverOneKeptConnection() async throws {
        let fixture = try await Fixture()
        let client = try fixture.client()
        for _ in 0..<3 {
            let response = try await client.execute(method: .GET, path: "/v1/chats/chat-1/participants", timeout: .seconds(5))
            #expect(response.status == 200)
            #expect(String(decoding: response.body, as: UTF8.self).contains("\"chat-1\""))
        }
        #expect(fixture.terminator.acceptedConnections == 1, "keep-alive lost: \(fixture.terminator.log())")
        #expect(await client.connectionsOpened == 1)
        #expect(await fixture.stubRequests() == 3)
        await client.close()
        await fixture.close()
    }

    /// A connection that closes after its response gets a new connection (and SSL object) for the
    /// next request; evhttp reconnecting the old one in place would reuse a finished session.
    @Test func aClosedTLSConnectionIsReplacedByANewOne() async throws {
        let fixture = try await Fixture()
        let client = try fixture.client()
        for round in 1...3 {
            let response = try await client.execute(
                method: .GET, path: "/v1/chats/chat-\(round)/participants", headers: [("Connection", "close")], timeout: .seconds(5))
            #expect(response.status == 200, "round \(round)")
        }
        let after = try await client.execute(method: .GET, path: "/v1/chats/chat-4/participants", timeout: .seconds(5))
        #expect(after.status == 200)
        #expect(fixture.terminator.acceptedConnections == 4, "\(fixture.terminator.log())")
        // A new evhttp connection, with a new SSL object, each time: none reconnected in place.
        #expect(await client.connectionsOpened == 4)
        await client.close()
        await fixture.close()
    }

    /// The server closes an idle keep-alive connection (with a TLS close_notify, as a server's
    /// keep-alive timeout does): the next request gets a new connection and succeeds.
    @Test func aConnectionTheServerClosedWhileIdleIsReplaced() async throws {
        let fixture = try await Fixture(idleTimeout: .milliseconds(300))
        let client = try fixture.client()
        for round in 1...3 {
            let response = try await client.execute(method: .GET, path: "/v1/chats/chat-\(round)/participants", timeout: .seconds(5))
            #expect(response.status == 200, "round \(round): \(fixture.terminator.log())")
            try #require(await eventually(timeout: .seconds(5)) { fixture.terminator.closedConnections >= round })
            // The client has seen the close (a request racing it would fail, and the upstream
            // client would retry it).
            try #require(await eventually(timeout: .seconds(5)) { await client.liveConnections == 0 })
        }
        #expect(fixture.terminator.acceptedConnections == 3)
        #expect(await client.connectionsOpened == 3, "a closed connection was reconnected in place")
        await client.close()
        await fixture.close()
    }

    @Test func anotherCAFailsAsATLSErrorAndNothingReachesUpstream() async throws {
        let fixture = try await Fixture()
        let client = try fixture.client(caFile: fixture.certificates.otherCAFile)
        let error = await Self.tlsFailure { () async throws(HTTPClientError) in
            try await client.execute(method: .GET, path: "/v1/chats/chat-1/participants", timeout: .seconds(5))
        }
        #expect(error?.code == .tlsFailed, "\(String(describing: error))")
        #expect(error?.message.contains("certificate verification failed") == true, "\(String(describing: error))")
        #expect(await fixture.stubRequests() == 0)
        await client.close()
        await fixture.close()
    }

    @Test func aHostTheCertificateDoesNotNameFails() async throws {
        let fixture = try await Fixture()
        // The certificate names localhost only; 127.0.0.1 is the same server, not the same name.
        let client = try fixture.client(host: "127.0.0.1")
        let error = await Self.tlsFailure { () async throws(HTTPClientError) in
            try await client.execute(method: .GET, path: "/v1/chats/chat-1/participants", timeout: .seconds(5))
        }
        #expect(error?.code == .tlsFailed, "\(String(describing: error))")
        #expect(await fixture.stubRequests() == 0)
        await client.close()
        await fixture.close()
    }

    /// The first bytes on the wire are a TLS ClientHello carrying the host name (SNI), never an
    /// HTTP request; and an https URL pointing at a plain-HTTP server fails instead of falling back.
    @Test func theClientSpeaksTLSFirstWithTheServerNameAndNeverPlainHTTP() async throws {
        let listener = try ScriptedTCPServer(behavior: .neverAnswer)
        defer { listener.stop() }
        let loop = EventLoop(name: "https-hello")
        defer { loop.stop() }
        let client = try HTTPClient(loop: loop, baseURL: "https://localhost:\(listener.port)", logger: Self.logger)
        _ = await Self.tlsFailure { () async throws(HTTPClientError) in
            try await client.execute(method: .GET, path: "/v1/chats/chat-1/participants", timeout: .milliseconds(500))
        }
        await client.close()
        let hello = try #require(listener.firstChunks.first)
        #expect(hello.first == 0x16, "not a TLS handshake record: \(hello.prefix(8))")
        #expect(hello.firstRange(of: Array("localhost".utf8)) != nil, "no server name in the ClientHello")
        #expect(hello.firstRange(of: Array("GET ".utf8)) == nil)
        #expect(listener.requestsSeen == 0)

        let fixture = try await Fixture()
        let plain = try HTTPClient(
            loop: fixture.loop, baseURL: "https://localhost:\(fixture.stubPort)",
            tls: TLSClientContext(caFile: fixture.certificates.caFile), logger: Self.logger)
        let error = await Self.tlsFailure { () async throws(HTTPClientError) in
            try await plain.execute(method: .GET, path: "/v1/chats/chat-1/participants", timeout: .seconds(5))
        }
        #expect(error != nil)
        #expect(error?.code != .timeout, "\(String(describing: error))")
        #expect(await fixture.stubRequests() == 0, "a request reached the plain-HTTP server")
        await plain.close()
        await fixture.close()
    }
}
