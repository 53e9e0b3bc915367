import ChatService
import Foundation
import TestSupport
import Testing

/// Issue 14's report, replayed against the real binary: a resolver that never answers (a
/// nameserver that swallows every query, named by DNS_RESOLV_CONF), the upstream and Redis both
/// named by host. Names are looked up off the loop, so every `/health` probe answers within its
/// own 1 s client timeout while a cold read waits on the upstream's name, and the read itself
/// is answered within PARTICIPANTS_MAX_API_TIMEOUT.
@Suite("DNS that never answers", .serialized, .timeLimit(.minutes(2)))
struct DNSStallTests {
    @Test func healthAnswersAndTheColdReadIsBoundedWhileNoNameResolves() async throws {
        // evdns would wait 30 s per query: only the service's own bounds end a lookup.
        let nameserver = try FakeNameserver(silent: true, queryTimeoutSeconds: 30)
        defer { nameserver.stop() }
        let httpPort = freeLoopbackPort()
        let secret = "dns-stall-secret"
        let service = try ServiceProcess(environment: [
            "REDIS_URL": "redis://redis.never.test:6379/0",
            "PARTICIPANTS_API_URL": "http://upstream.never.test:8090",
            "DNS_RESOLV_CONF": nameserver.resolvConf,
            "PARTICIPANTS_MAX_API_TIMEOUT": "3s",
            "PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "false",
            "REDIS_CONNECT_TIMEOUT": "1s",
            "REDIS_RETRY_DELAY": "100ms",
            "REDIS_MAX_RETRY_DELAY": "500ms",
            "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "\(httpPort)", "GRPC_ENABLED": "false",
            "JWT_SECRET": secret,
            "LOG_LEVEL": "debug",
        ])
        let base = "http://127.0.0.1:\(httpPort)"
        try #require(
            await eventually(timeout: .seconds(20)) {
                await httpGet("\(base)/health", timeout: .seconds(1))?.status == 200
            },
            "the service never answered /health; log:\n\(service.output())")
        // Redis' name is being looked up (and never answered) all along.
        try #require(await eventually(timeout: .seconds(10)) { nameserver.queries.contains("redis.never.test") })

        let token = mintUserToken(subject: "alice", secret: secret, validFor: .seconds(600))
        let started = ContinuousClock.now
        let read = Task {
            await httpGet(
                "\(base)/v1/chats/chat-1/participants", headers: ["Authorization": "Bearer \(token)"],
                timeout: .seconds(5)) // PARTICIPANTS_MAX_API_TIMEOUT plus slack for a loaded machine
        }
        try #require(await eventually(timeout: .seconds(5)) { nameserver.queries.contains("upstream.never.test") })
        // Probe while the read waits on the upstream's name.
        let (probes, unanswered) = await probeRepeatedly(since: started, window: .milliseconds(2500), minimumProbes: 5)
        {
            await httpGet("\(base)/health", timeout: .seconds(1))?.status == 200
        }
        let answer = await read.value
        #expect(probes >= 5, "only \(probes) /health probes in 20 s")
        #expect(
            unanswered.isEmpty,
            "/health probes \(unanswered) of \(probes) got no 200 within 1 s; log:\n\(service.output())")
        let status = try #require(
            answer?.status, "the cold read got no answer within its bound; log:\n\(service.output())")
        #expect(status == 503, "\(answer?.body ?? "")")
        #expect(answer?.body.contains("participants_unavailable") == true, "\(answer?.body ?? "")")
        #expect(service.output().contains("upstream.never.test"), "the log does not name the unresolved upstream host")

        let health = await httpGet("\(base)/health", timeout: .seconds(1))
        #expect(health?.body.contains("\"degraded\"") == true, "\(health?.body ?? "no answer")")
        service.signal(SIGTERM)
        #expect(await service.waitForExit(timeout: .seconds(15)) == 0, "log:\n\(service.output())")
    }
}
