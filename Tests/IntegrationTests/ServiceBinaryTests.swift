import Foundation
import Testing
import TestSupport

/// The real `chat-service` binary as a subprocess: start-up with and without Redis, bad
/// configuration, signals.
@Suite("chat-service binary", .serialized, .timeLimit(.minutes(2)))
struct ServiceBinaryTests {
    static func baseEnvironment(redisPort: Int) -> [String: String] {
        [
            "REDIS_URL": "redis://127.0.0.1:\(redisPort)/0",
            "REDIS_RETRY_DELAY": "100ms", "REDIS_MAX_RETRY_DELAY": "200ms",
            "PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "false",
            "LOG_LEVEL": "debug",
        ]
    }

    @Test func withoutRedisHealthIsDegradedThenOkOnceRedisStarts() async throws {
        let redisPort = freeLoopbackPort()
        let service = try ServiceProcess.serve(environment: Self.baseEnvironment(redisPort: redisPort))
        let health = try #require(service.httpBase) + "/health"

        let degraded = await eventually(timeout: .seconds(20)) {
            guard let reply = await httpGet(health) else { return false }
            return reply.status == 200 && reply.body.contains("\"degraded\"")
        }
        #expect(degraded, "no degraded /health without Redis; log:\n\(service.output())")

        let redis = try await RedisServer.start(port: redisPort)
        defer { redis.cleanup() }
        let ok = await eventually(timeout: .seconds(20)) {
            guard let reply = await httpGet(health) else { return false }
            return reply.status == 200 && reply.body.contains("\"ok\"")
        }
        #expect(ok, "no ok /health once Redis runs; log:\n\(service.output())")

        service.signal(SIGTERM)
        let status = await service.waitForExit(timeout: .seconds(15))
        #expect(status == 0, "SIGTERM did not exit 0; log:\n\(service.output())")
    }

    @Test func readyAndMetricsAnswer() async throws {
        let redis = try await RedisServer.start()
        defer { redis.cleanup() }
        let service = try ServiceProcess.serve(environment: Self.baseEnvironment(redisPort: redis.port))
        let base = try #require(service.httpBase)
        let ready = await eventually(timeout: .seconds(20)) { await httpGet("\(base)/ready")?.status == 200 }
        #expect(ready, "log:\n\(service.output())")
        let ok = await eventually(timeout: .seconds(10)) { await httpGet("\(base)/health")?.body.contains("\"ok\"") == true }
        #expect(ok, "/health never said ok; log:\n\(service.output())")
        let metrics = await httpGet("\(base)/metrics")
        #expect(metrics?.status == 200)
        #expect(metrics?.body.contains("redis_state") == true)
        #expect(metrics?.body.contains("http_requests_total") == true)
        let missing = await httpGet("\(base)/no/such/route")
        #expect(missing?.status == 404)
        #expect(missing?.body.contains("\"error\"") == true)
        service.signal(SIGINT)
        #expect(await service.waitForExit(timeout: .seconds(15)) == 0)
    }

    @Test(arguments: [
        ("REDIS_MAX_RETRIES", "lots"),
        ("HTTP_PORT", "99999"),
        ("GRPC_PORT", "99999"),
        ("GRPC_HOST", "grpc.example"),
        ("PARTICIPANTS_UPDATE_INTERVAL", "15 minutes"),
        ("REDIS_URL", "mysql://127.0.0.1"),
        // Issue 14: a scheme other than http/https, an unreadable or non-PEM CA file, a JWKS URL
        // that is not an http(s) URL, a resolver file that cannot be read.
        ("PARTICIPANTS_API_URL", "ftp://upstream.example"),
        ("PARTICIPANTS_API_CA_FILE", "/nonexistent/ca.pem"),
        ("PARTICIPANTS_API_CA_FILE", "/etc/hosts"),
        ("JWT_JWKS_URL", "not a url"),
        ("JWT_JWKS_URL", "ldap://idp.example/certs"),
        ("DNS_RESOLV_CONF", "/nonexistent/resolv.conf"),
    ])
    func badVariableExits78NamingIt(variable: String, value: String) async throws {
        var environment = Self.baseEnvironment(redisPort: freeLoopbackPort())
        environment[variable] = value
        let service = try ServiceProcess.serve(environment: environment)
        let status = await service.waitForExit(timeout: .seconds(10))
        #expect(status == 78)
        let output = service.output()
        #expect(output.contains(variable))
        #expect(output.contains("expected"))
        #expect(output.split(separator: "\n").count == 1, "expected one line, got:\n\(output)")
    }

    @Test func helpListsSubcommandsAndVariables() async throws {
        let service = try ServiceProcess(arguments: ["--help"], environment: [:])
        #expect(await service.waitForExit(timeout: .seconds(10)) == 0)
        let output = service.output()
        #expect(output.contains("serve"))
        #expect(output.contains("REDIS_URL"))
        #expect(output.contains("PARTICIPANTS_BATCH_SIZE"))
    }
}
