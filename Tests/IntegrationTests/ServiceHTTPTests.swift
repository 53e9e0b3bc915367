import Actors
import ChatService
import Foundation
import Logging
import ChatRuntime
import ServiceLifecycle
import StubUpstream
import Testing
import TestSupport

/// The whole service in-process (``InProcessService``) against a real redis-server and the stub
/// upstream, driven over HTTP: authentication, the read route, manual refreshes, the status
/// route, flags, the 03:00 run with an injected clock, and a Redis outage during a full run.
@Suite("Service over HTTP", .serialized, .timeLimit(.minutes(2)))
struct ServiceHTTPTests {
    static let logger = Logger(label: "test.service")
    static let jwtSecret = InProcessService.jwtSecret
    static let adminToken = InProcessService.adminToken
    static let userToken = InProcessService.userToken

    /// The whole service (``InProcessService``) with backends of its own and a manual sync clock
    /// at `clockStart`.
    static func startService(
        chats: Int = 30, environment extra: [String: String] = [:], clockStart: Date = Date(), redisConfig: [String] = []
    ) async throws -> InProcessService {
        try await InProcessService.start(
            chats: chats, redisConfig: redisConfig,
            environment: ["PARTICIPANTS_BATCH_SIZE": "7", "PARTICIPANTS_STALE_THRESHOLD": "15m"].merging(extra) { $1 },
            clock: ManualSyncClock(now: clockStart), logger: logger)
    }

    static func errorCode(_ json: [String: Any]) -> String? {
        (json["error"] as? [String: Any])?["code"] as? String
    }

    @Test func userRoutesNeedAValidToken() async throws {
        let app = try await Self.startService()
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
        let app = try await Self.startService()
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
        let app = try await Self.startService()
        #expect(await app.admin("POST", "/internal/chats/chat-1/participants/refresh", token: nil).status == 403)
        #expect(await app.admin("POST", "/internal/chats/chat-1/participants/refresh", token: "wrong").status == 403)
        #expect(await app.admin("GET", "/internal/participants/status", token: Self.userToken).status == 403)
        await app.close()

        let unconfigured = try await Self.startService(environment: ["ADMIN_TOKEN": ""])
        let reply = await unconfigured.admin("POST", "/internal/participants/refresh")
        #expect(reply.status == 403)
        #expect(Self.errorCode(reply.json) == "forbidden")
        await unconfigured.close()
    }

    @Test func manualChatRefreshReturnsTheNewEntry() async throws {
        let app = try await Self.startService()
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
        let app = try await Self.startService(chats: 40)
        await app.stub.updateFaults { $0.latency = .milliseconds(100) }
        let first = await app.admin("POST", "/internal/participants/refresh")
        #expect(first.status == 202)
        let jobID = try #require(first.json["job_id"] as? String)
        let second = await app.admin("POST", "/internal/participants/refresh")
        #expect(second.json["job_id"] as? String == jobID)

        let job = try await app.waitForJob(jobID)
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
        let app = try await Self.startService(chats: 25, clockStart: start)
        let clock = try #require(app.clock)
        #expect(await clock.waitForSleepers(atLeast: 1))
        #expect(await app.redisKeyCount(pattern: "participants:v1:{chat-*}") == 0)
        clock.advance(by: .seconds(61))
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
        let app = try await Self.startService(
            chats: chats,
            environment: [
                "PARTICIPANTS_LEADER_LOCK_TTL": "1s", "PARTICIPANTS_BATCH_SIZE": "10",
                "PARTICIPANTS_BATCH_CONCURRENCY": "fixed", "PARTICIPANTS_MAX_BATCHES_IN_FLIGHT": "2",
            ],
            redisConfig: ["appendonly yes", "appendfsync always"])
        await app.stub.updateFaults { $0.latency = .milliseconds(40) }
        let jobID = try #require(await app.admin("POST", "/internal/participants/refresh").json["job_id"] as? String)
        try #require(await eventually(timeout: .seconds(10)) { await app.redisKeyCount(pattern: "participants:v1:{chat-*}") > 0 })
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
        let job = try await app.waitForJob(jobID, timeout: .seconds(40))
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
        let app = try await Self.startService(environment: ["PARTICIPANTS_INTEGRATION_DISABLED": "true"])
        let reply = await app.get("/v1/chats/chat-1/participants")
        #expect(reply.status == 503)
        #expect(Self.errorCode(reply.json) == "participants_disabled")
        #expect(await app.get("/health", token: nil).status == 200)
        #expect(app.application.participants == nil)
        #expect(await app.stub.statistics.totalRequests == 0)
        await app.close()
    }

    @Test func backgroundSyncOffSchedulesNothingButManualRunsWork() async throws {
        let app = try await Self.startService(environment: ["PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "false"])
        let status = await app.admin("GET", "/internal/participants/status").json
        let schedule = (status["sync"] as? [String: Any])?["schedule"] as? [String: Any]
        #expect(schedule?["next_full_run_at"] is NSNull || schedule?["next_full_run_at"] == nil)
        let clock = try #require(app.clock)
        clock.advance(by: .seconds(86_400))
        // A run the day fired would be planned at the advance, ahead of the manual run asked for
        // next, which goes through the same leader and stream: a manual request joins a run in
        // progress (its id), and once the manual run has ended any other run would be recorded.
        let jobID = try #require(await app.admin("POST", "/internal/participants/refresh").json["job_id"] as? String)
        #expect(jobID.hasPrefix("manual-"), "joined \(jobID)")
        #expect(try await app.waitForJob(jobID)["state"] as? String == "completed")
        let runs = try await app.redis.cli("ZRANGE", CoordinationKeys.runs, "0", "-1").split(separator: "\n").map(String.init)
        #expect(runs == [jobID])
        #expect(await app.stub.statistics.requests(.listChats) == 1)
        #expect(await app.redisKeyCount(pattern: "participants:v1:{chat-*}") == 30)
        await app.close()
    }
}
