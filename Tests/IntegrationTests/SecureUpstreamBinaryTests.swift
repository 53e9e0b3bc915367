import ChatService
import Foundation
import Logging
import StubUpstream
import Testing
import TestSupport

@testable import ChatRuntime

/// Issue 14 through the real binary: HTTPS to upstream with PARTICIPANTS_API_CA_FILE (and the
/// clear failure with another CA: a 503 read, the reason in the log, `code="tls"` in the metrics),
/// and user tokens from an identity provider's JWKS (503 `auth_unavailable` until its keys
/// arrive, then accepted; forged tokens 401; `mint-token`'s HS256 tokens still accepted).
@Suite("HTTPS and JWKS through the binary", .serialized, .timeLimit(.minutes(3)))
struct SecureUpstreamBinaryTests {
    static let logger = Logger(label: "test.secure-binary")

    static func environment(httpPort: Int, upstream: String) -> [String: String] {
        [
            "REDIS_URL": "redis://127.0.0.1:\(freeLoopbackPort())/0",
            "REDIS_RETRY_DELAY": "100ms", "REDIS_MAX_RETRY_DELAY": "200ms", "REDIS_CONNECT_TIMEOUT": "500ms",
            "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "\(httpPort)", "GRPC_ENABLED": "false",
            "PARTICIPANTS_API_URL": upstream,
            "PARTICIPANTS_MAX_API_TIMEOUT": "3s",
            "PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "false",
            "LOG_LEVEL": "info",
        ]
    }

    @Test func readsGoThroughHTTPSWithThePrivateCAAndFailClearlyWithAnother() async throws {
        let loop = EventLoop(name: "secure-binary-stub")
        defer { loop.stop() }
        let stub = StubUpstream(settings: .init(chats: 20, participantsPerChat: 2, maxBatch: 5), loop: loop, logger: Self.logger)
        let stubPort = try await stub.start(port: 0)
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let terminator = try await TLSTerminator.start(backendPort: stubPort, certificates: certificates)
        defer { terminator.stop() }
        let secret = "secure-binary-secret"
        let token = mintUserToken(subject: "alice", secret: secret, validFor: .seconds(600))

        for (caFile, works) in [(certificates.caFile, true), (certificates.otherCAFile, false)] {
            let httpPort = freeLoopbackPort()
            var environment = Self.environment(httpPort: httpPort, upstream: "https://localhost:\(terminator.port)")
            environment["PARTICIPANTS_API_CA_FILE"] = caFile
            environment["JWT_SECRET"] = secret
            let service = try ServiceProcess(environment: environment)
            let base = "http://127.0.0.1:\(httpPort)"
            try #require(await eventually(timeout: .seconds(20)) { await httpGet("\(base)/health")?.status == 200 }, "log:\n\(service.output())")
            let before = await stub.statistics.totalRequests
            let read = await httpGet("\(base)/v1/chats/chat-3/participants", headers: ["Authorization": "Bearer \(token)"], timeout: .seconds(6))
            if works {
                #expect(read?.status == 200, "\(read?.body ?? "no answer"); log:\n\(service.output())")
                #expect(read?.body.contains("\"source\":\"upstream\"") == true)
                #expect(await stub.statistics.totalRequests > before)
            } else {
                #expect(read?.status == 503, "\(read?.body ?? "no answer")")
                #expect(await stub.statistics.totalRequests == before, "a request reached upstream without verified TLS")
                let logged = await eventually(timeout: .seconds(5)) { service.output().contains("certificate verification failed") }
                #expect(logged, "the log does not say why; log:\n\(service.output())")
                let metrics = await httpGet("\(base)/metrics")?.body ?? ""
                #expect(metrics.contains("upstream_errors_total") && metrics.contains("code=\"tls\""), "\(metrics.prefix(2000))")
            }
            service.signal(SIGTERM)
            #expect(await service.waitForExit(timeout: .seconds(15)) == 0, "log:\n\(service.output())")
        }
        await stub.shutdown()
    }

    @Test func providerTokensAre503UntilTheKeysArriveThenAcceptedAndMintTokenStillWorks() async throws {
        let idp = try await IdentityProvider()
        idp.fail(true)
        try await idp.start()
        let httpPort = freeLoopbackPort()
        let secret = "secure-binary-secret"
        var environment = Self.environment(httpPort: httpPort, upstream: "http://127.0.0.1:\(freeLoopbackPort())")
        environment["PARTICIPANTS_INTEGRATION_DISABLED"] = "true"
        environment["JWT_SECRET"] = secret
        environment["JWT_JWKS_URL"] = idp.jwksURL
        let service = try ServiceProcess(environment: environment)
        let base = "http://127.0.0.1:\(httpPort)"
        try #require(await eventually(timeout: .seconds(20)) { await httpGet("\(base)/health")?.status == 200 }, "log:\n\(service.output())")

        let token = try await idp.token(.ec, subject: "carol")
        func createChat(_ token: String) async -> (status: Int, body: String)? {
            await httpRequest(
                "POST", "\(base)/v1/chats", headers: ["Authorization": "Bearer \(token)"], body: Data(#"{"title":"t"}"#.utf8),
                timeout: .seconds(5))
        }
        let unavailable = await createChat(token)
        #expect(unavailable?.status == 503, "\(unavailable?.body ?? "no answer")")
        #expect(unavailable?.body.contains("\"auth_unavailable\"") == true, "\(unavailable?.body ?? "")")

        idp.fail(false)
        let accepted = await eventually(timeout: .seconds(20)) { await createChat(token)?.status == 201 }
        #expect(accepted, "the provider's keys never arrived; log:\n\(service.output())")

        let rsaToken = try await idp.token(.rsa, subject: "dave")
        let parts = rsaToken.split(separator: ".")
        let forged = "\(parts[0]).\(IdentityProvider.base64URL(Data(#"{"sub":"admin"}"#.utf8))).\(parts[2])"
        #expect(await createChat(forged)?.status == 401)

        // The CLI still mints HS256 tokens the service accepts.
        let mint = try ServiceProcess(arguments: ["mint-token", "--subject", "erin"], environment: ["JWT_SECRET": secret])
        #expect(await mint.waitForExit(timeout: .seconds(10)) == 0)
        let minted = mint.output().trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(await createChat(minted)?.status == 201, "mint-token output: \(minted)")

        // The provider goes away: its keys stay known.
        await idp.stop()
        #expect(await createChat(try await idp.token(.ed, subject: "frank"))?.status == 201)
        service.signal(SIGTERM)
        #expect(await service.waitForExit(timeout: .seconds(15)) == 0, "log:\n\(service.output())")
        await idp.shutdown()
    }
}
