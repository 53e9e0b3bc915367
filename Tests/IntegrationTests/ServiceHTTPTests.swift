import Actors
import ChatService
import Foundation
import Logging
import Prometheus
import ChatRuntime
import ServiceLifecycle
import Testing
import TestSupport

/// The whole service in-process (``buildServices``) against a real redis-server and the stub
/// upstream, driven over HTTP: authentication, the read route, manual refreshes, the status
/// route, flags, the 03:00 run with an injected clock, and a Redis outage during a full run.
@Suite("Service over HTTP", .serialized, .timeLimit(.minutes(2)))
struct ServiceHTTPTests {
    static let logger = Logger(label: "test.service")
    static let jwtSecret = "test-jwt-secret"
    static let adminToken = "test-admin-token"
    static let userToken = mintUserToken(subject: "alice", secret: jwtSecret, validFor: .seconds(3600))

    final class App: Sendable {
        let loop: EventLoop
        let redis: RedisServer
        let stub: StubUpstream
        let application: ChatServiceApplication
        let group: ServiceGroup
        let groupTask: Task<Void, any Error>
        let base: String
        let clock: ManualSyncClock
        /// The chat store file of this app, removed by ``close()``, unless the caller named it.
        let ownedSQLitePath: String?

        init(
            chats: Int = 30, environment extra: [String: String] = [:], clockStart: Date = Date(), redisConfig: [String] = []
        ) async throws {
            loop = EventLoop(name: "service-http")
            redis = try await RedisServer.start(extraConfig: redisConfig)
            stub = StubUpstream(settings: .init(chats: chats, participantsPerChat: 4, maxHang: .seconds(30)), loop: loop, logger: ServiceHTTPTests.logger)
            let stubPort = try await stub.start(port: 0)
            var environment = [
                "REDIS_URL": redis.url,
                "REDIS_RETRY_DELAY": "50ms", "REDIS_MAX_RETRY_DELAY": "100ms", "REDIS_MAX_RETRIES": "2",
                "REDIS_HEALTH_CHECK_INTERVAL": "200ms", "REDIS_CONNECT_TIMEOUT": "500ms", "REDIS_COMMAND_TIMEOUT": "500ms",
                "PARTICIPANTS_API_URL": "http://127.0.0.1:\(stubPort)",
                "PARTICIPANTS_MAX_API_TIMEOUT": "3s",
                "PARTICIPANTS_BATCH_SIZE": "7",
                "PARTICIPANTS_STALE_THRESHOLD": "15m",
                "HTTP_HOST": "127.0.0.1", "GRPC_HOST": "127.0.0.1", "GRPC_PORT": "0", "HTTP_PORT": "0",
                "JWT_SECRET": ServiceHTTPTests.jwtSecret, "ADMIN_TOKEN": ServiceHTTPTests.adminToken,
                "SHUTDOWN_TIMEOUT": "3s", "CHAT_SQLITE_PATH": temporarySQLitePath(),
            ]
            // A path the caller names is the caller's to remove (a restart test reopens it).
            ownedSQLitePath = extra["CHAT_SQLITE_PATH"] == nil ? environment["CHAT_SQLITE_PATH"] : nil
            environment.merge(extra) { $1 }
            let configuration = try ServiceConfiguration(environment: environment)
            clock = ManualSyncClock(now: clockStart)
            application = try await buildServices(
                configuration: configuration, loop: loop, metrics: PrometheusCollectorRegistry(),
                syncClock: clock, logger: ServiceHTTPTests.logger)
            group = application.makeServiceGroup(signals: [], logger: ServiceHTTPTests.logger)
            let group = group
            groupTask = Task { try await group.run() }
            let port = try await application.frontend.boundPort()
            base = "http://127.0.0.1:\(port)"
            let supervisor = application.supervisor
            _ = await eventually(timeout: .seconds(10)) { await supervisor.state == .ready }
            // The invalidation feed drops L1 when it first positions; tests read after that.
            if let feed = application.participants?.invalidationFeed {
                _ = await eventually(timeout: .seconds(10)) { await feed.position != nil }
            }
        }

        func close() async {
            await group.triggerGracefulShutdown()
            _ = try? await groupTask.value
            await stub.shutdown()
            redis.cleanup()
            loop.stop()
            if let ownedSQLitePath { removeTemporarySQLite(ownedSQLitePath) }
        }

        func get(_ path: String, token: String? = ServiceHTTPTests.userToken) async -> (status: Int, json: [String: Any]) {
            let headers = token.map { ["Authorization": "Bearer \($0)"] } ?? [:]
            guard let reply = await httpGet(base + path, headers: headers, timeout: .seconds(10)) else { return (0, [:]) }
            return (reply.status, Self.object(reply.body))
        }

        func admin(_ method: String, _ path: String, token: String? = ServiceHTTPTests.adminToken) async -> (status: Int, json: [String: Any]) {
            let headers = token.map { ["Authorization": "Bearer \($0)"] } ?? [:]
            guard let reply = await httpRequest(method, base + path, headers: headers, timeout: .seconds(10)) else { return (0, [:]) }
            return (reply.status, Self.object(reply.body))
        }

        static func object(_ body: String) -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }

        func redisKeyCount(pattern: String) async -> Int {
            let output = (try? await redis.cli("--scan", "--pattern", pattern)) ?? ""
            return output.split(separator: "\n").filter { !$0.isEmpty }.count
        }

        /// The job once it has ended (not `queued` nor `running`), or as last seen after `timeout`.
        func waitForJob(_ id: String, timeout: Duration = .seconds(30)) async -> [String: Any] {
            var last: [String: Any] = [:]
            _ = await eventually(timeout: timeout) {
                last = await self.admin("GET", "/internal/participants/refresh/\(id)").json
                return (last["state"] as? String).map { $0 != "running" && $0 != "queued" } ?? false
            }
            return last
        }

        /// `sync.coordination` of the status route.
        func coordination() async -> [String: Any] {
            let status = await admin("GET", "/internal/participants/status").json
            return (status["sync"] as? [String: Any])?["coordination"] as? [String: Any] ?? [:]
        }
    }

    static func errorCode(_ json: [String: Any]) -> String? {
        (json["error"] as? [String: Any])?["code"] as? String
    }

    @Test func userRoutesNeedAValidToken() async throws {
        let app = try await App()
        #expect(await app.get("/v1/chats/chat-1/participants", token: nil).status == 401)
        let wrongSecret = mintUserToken(subject: "mallory", secret: "other-secret", validFor: .seconds(60))
        let forged = await app.get("/v1/chats/chat-1/participants", token: wrongSecret)
        #expect(forged.status == 401)
        #expect(Self.errorCode(forged.json) == "unauthorized")
        let expired = mintUserToken(subject: "bob", secret: Self.jwtSecret, validFor: .seconds(60), now: Date().addingTimeInterval(-3600))
        #expect(await app.get("/v1/chats/chat-1/participants", token: expired).status == 401)
        await app.close()
    }

    @Test func readRouteServesUpstreamThenMemoryAndValidatesIDs() async throws {
        let app = try await App()
        let first = await app.get("/v1/chats/chat-3/participants")
        #expect(first.status == 200)
        #expect(first.json["source"] as? String == "upstream")
        #expect(first.json["stale"] as? Bool == false)
        #expect((first.json["participants"] as? [Any])?.count == 4)
        #expect(first.json["fetched_at"] is String)
        let second = await app.get("/v1/chats/chat-3/participants")
        #expect(second.json["source"] as? String == "memory")

        let unknown = await app.get("/v1/chats/chat-999/participants")
        #expect(unknown.status == 404)
        #expect(Self.errorCode(unknown.json) == "chat_not_found")
        for bad in ["%7Bx%7D", "a%20b", String(repeating: "x", count: 129)] {
            let reply = await app.get("/v1/chats/\(bad)/participants")
            #expect(reply.status == 400, "chat id \(bad)")
            #expect(Self.errorCode(reply.json) == "invalid_chat_id")
        }
        await app.close()
    }

    @Test func adminRoutesNeedTheAdminToken() async throws {
        let app = try await App()
        #expect(await app.admin("POST", "/internal/chats/chat-1/participants/refresh", token: nil).status == 403)
        #expect(await app.admin("POST", "/internal/chats/chat-1/participants/refresh", token: "wrong").status == 403)
        #expect(await app.admin("GET", "/internal/participants/status", token: Self.userToken).status == 403)
        await app.close()

        let unconfigured = try await App(environment: ["ADMIN_TOKEN": ""])
        let reply = await unconfigured.admin("POST", "/internal/participants/refresh")
        #expect(reply.status == 403)
        #expect(Self.errorCode(reply.json) == "forbidden")
        await unconfigured.close()
    }

    @Test func manualChatRefreshReturnsTheNewEntry() async throws {
        let app = try await App()
        _ = await app.get("/v1/chats/chat-5/participants")
        _ = await app.stub.bump(chat: "chat-5")
        let refreshed = await app.admin("POST", "/internal/chats/chat-5/participants/refresh")
        #expect(refreshed.status == 200)
        #expect(refreshed.json["version"] as? Int == 2)
        #expect(refreshed.json["source"] as? String == "upstream")
        let read = await app.get("/v1/chats/chat-5/participants")
        #expect(read.json["version"] as? Int == 2)
        #expect(await app.admin("POST", "/internal/chats/chat-404/participants/refresh").status == 404)
        await app.close()
    }

    @Test func manualFullRefreshWritesEveryChatAndJoinsARunningOne() async throws {
        let app = try await App(chats: 40)
        await app.stub.updateFaults { $0.latency = .milliseconds(100) }
        let first = await app.admin("POST", "/internal/participants/refresh")
        #expect(first.status == 202)
        let jobID = try #require(first.json["job_id"] as? String)
        let second = await app.admin("POST", "/internal/participants/refresh")
        #expect(second.json["job_id"] as? String == jobID)

        let job = await app.waitForJob(jobID)
        #expect(job["state"] as? String == "completed")
        #expect((job["counts"] as? [String: Any])?["chats_refreshed"] as? Int == 40)
        #expect(await app.redisKeyCount(pattern: "participants:v1:{chat-*}") == 40)
        #expect(await app.admin("GET", "/internal/participants/refresh/nope").status == 404)

        let status = await app.admin("GET", "/internal/participants/status")
        #expect(status.status == 200)
        #expect((status.json["redis"] as? [String: Any])?["state"] as? String == "ready")
        #expect(status.json["sync"] is [String: Any])
        #expect(status.json["cache"] is [String: Any])
        // The one instance leads, and the whole run went through the shared stream.
        let instance = try #require(status.json["instance_id"] as? String)
        let coordination = await app.coordination()
        #expect(coordination["instance_id"] as? String == instance)
        #expect(coordination["is_leader"] as? Bool == true)
        let leader = coordination["leader"] as? [String: Any]
        #expect(leader?["instance_id"] as? String == instance)
        #expect(leader?["fence"] as? Int == coordination["fence"] as? Int)
        let stream = coordination["stream"] as? [String: Any]
        #expect(stream?["length"] as? Int == (job["counts"] as? [String: Any])?["batches_planned"] as? Int)
        #expect(stream?["pending"] as? Int == 0)
        #expect(stream?["lag"] as? Int == 0)
        #expect((coordination["consumer"] as? [String: Any])?["batches_settled"] as? Int == 6)
        #expect(job["fence"] as? Int == coordination["fence"] as? Int)
        await app.close()
    }

    @Test func theDailyFullRunFiresAtThreeWithTheInjectedClock() async throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.date(from: DateComponents(year: 2026, month: 11, day: 25, hour: 2, minute: 59))!
        let app = try await App(chats: 25, clockStart: start)
        _ = await app.clock.waitForSleepers(atLeast: 1)
        #expect(await app.redisKeyCount(pattern: "participants:v1:{chat-*}") == 0)
        app.clock.advance(by: .seconds(61))
        let allWritten = await eventually(timeout: .seconds(20)) {
            await app.redisKeyCount(pattern: "participants:v1:{chat-*}") == 25
        }
        #expect(allWritten)
        await app.close()
    }

    @Test func redisKilledDuringAFullRunPausesItAndTheRunCompletesOnceRedisIsBack() async throws {
        // AOF with fsync per write: what Redis acknowledged before the kill survives it (the run's
        // record, its cursor, the stream), so the run carries on from where it was.
        // 1000 chats in batches of 10 are 7 pages of upstream's list (160 chats a page) and 100
        // batches; two in flight at 40 ms a call take about 2 s, and the leader lists no further
        // ahead than the backlog allows (8 batches), so it is still listing when Redis dies.
        let chats = 1000
        let app = try await App(
            chats: chats,
            environment: [
                "PARTICIPANTS_LEADER_LOCK_TTL": "1s", "PARTICIPANTS_BATCH_SIZE": "10",
                "PARTICIPANTS_BATCH_CONCURRENCY": "fixed", "PARTICIPANTS_MAX_BATCHES_IN_FLIGHT": "2",
            ],
            redisConfig: ["appendonly yes", "appendfsync always"])
        await app.stub.updateFaults { $0.latency = .milliseconds(40) }
        let jobID = try #require(await app.admin("POST", "/internal/participants/refresh").json["job_id"] as? String)
        _ = await eventually(timeout: .seconds(10)) { await app.redisKeyCount(pattern: "participants:v1:{chat-*}") > 0 }
        let firstFence = try #require(await app.coordination()["fence"] as? Int)
        let cached = try #require(try await app.redis.cli("--scan", "--pattern", "participants:v1:{chat-*}")
            .split(separator: "\n").first.map { String($0.dropFirst("participants:v1:{".count).dropLast()) })
        await app.redis.kill()

        // Without Redis nobody leads: the lease runs out and the run waits, with nothing lost.
        let leaseGone = await eventually(timeout: .seconds(10)) { await app.coordination()["is_leader"] as? Bool == false }
        #expect(leaseGone)
        let paused = await app.admin("GET", "/internal/participants/refresh/\(jobID)").json
        #expect(paused["state"] as? String == "running")
        // Readers are served from memory meanwhile.
        let read = await app.get("/v1/chats/\(cached)/participants")
        #expect(read.status == 200)
        #expect(read.json["source"] as? String == "memory")
        let health = await app.get("/health", token: nil)
        #expect(health.status == 200)
        #expect(health.json["status"] as? String == "degraded")

        try await app.redis.restart()
        let job = await app.waitForJob(jobID, timeout: .seconds(40))
        #expect(job["state"] as? String == "completed")
        let counts = job["counts"] as? [String: Any]
        #expect(counts?["chats_planned"] as? Int == chats)
        #expect(counts?["chats_refreshed"] as? Int == chats)
        // Leading again under a new fence, this instance took its own run over from the cursor.
        #expect(job["adoptions"] as? Int == 1)
        #expect((job["fence"] as? Int).map { $0 > firstFence } == true)
        let everyChat = await eventually(timeout: .seconds(20)) {
            await app.redisKeyCount(pattern: "participants:v1:{chat-*}") == chats
        }
        #expect(everyChat)
        await app.close()
    }

    @Test func integrationDisabledTurnsTheParticipantsRoutesOff() async throws {
        let app = try await App(environment: ["PARTICIPANTS_INTEGRATION_DISABLED": "true"])
        let reply = await app.get("/v1/chats/chat-1/participants")
        #expect(reply.status == 503)
        #expect(Self.errorCode(reply.json) == "participants_disabled")
        #expect(await app.get("/health", token: nil).status == 200)
        #expect(app.application.participants == nil)
        #expect(await app.stub.statistics.totalRequests == 0)
        await app.close()
    }

    @Test func backgroundSyncOffSchedulesNothingButManualRunsWork() async throws {
        let app = try await App(environment: ["PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "false"])
        let status = await app.admin("GET", "/internal/participants/status").json
        let schedule = (status["sync"] as? [String: Any])?["schedule"] as? [String: Any]
        #expect(schedule?["next_full_run_at"] is NSNull || schedule?["next_full_run_at"] == nil)
        app.clock.advance(by: .seconds(86_400))
        try await Task.sleep(for: .milliseconds(300))
        #expect(await app.redisKeyCount(pattern: "participants:v1:{chat-*}") == 0)
        let jobID = try #require(await app.admin("POST", "/internal/participants/refresh").json["job_id"] as? String)
        #expect(await app.waitForJob(jobID)["state"] as? String == "completed")
        #expect(await app.redisKeyCount(pattern: "participants:v1:{chat-*}") == 30)
        await app.close()
    }
}
