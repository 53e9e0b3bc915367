import Foundation
import TestSupport
import Testing

/// Two real `chat-service` processes, a `chat-service stub-upstream` process and a real
/// redis-server: one leader at a time as the status routes tell, and a full refresh that the
/// other process finishes when the leader is killed with SIGKILL in the middle of it.
@Suite("Many chat-service processes", .serialized, .timeLimit(.minutes(3)))
struct MultiProcessSyncTests {
    static let adminToken = TestServiceEnvironment.adminToken

    struct Instance {
        let name: String
        let process: ServiceProcess
        let base: String

        func admin(_ method: String, _ path: String) async -> [String: Any] {
            let headers = ["Authorization": "Bearer \(MultiProcessSyncTests.adminToken)"]
            guard let reply = await httpRequest(method, base + path, headers: headers, timeout: .seconds(5)) else {
                return [:]
            }
            return (try? JSONSerialization.jsonObject(with: Data(reply.body.utf8))) as? [String: Any] ?? [:]
        }

        func coordination() async -> [String: Any] {
            let status = await admin("GET", "/internal/participants/status")
            return (status["sync"] as? [String: Any])?["coordination"] as? [String: Any] ?? [:]
        }

        var isLeader: Bool {
            get async { await coordination()["is_leader"] as? Bool == true }
        }
    }

    static func start(_ name: String, redis: RedisServer, stubBase: String) throws -> Instance {
        let process = try ServiceProcess.serve(environment: [
            "INSTANCE_ID": name,
            "REDIS_URL": redis.url,
            "REDIS_RETRY_DELAY": "100ms", "REDIS_MAX_RETRY_DELAY": "200ms",
            "PARTICIPANTS_API_URL": stubBase,
            "PARTICIPANTS_MAX_API_TIMEOUT": "1s",
            "PARTICIPANTS_BATCH_SIZE": "10",
            // The test asserts the leader keeps its lock through renewals: a stall of a loaded
            // machine (AddressSanitizer) must not cost it the lock. With the tests' 500 ms command
            // timeout a 2 s stall makes the health check drop the connection (a PING "answered
            // late") and the reconnect took 3 s more in CI; hence 2 s, and a TTL above 3 of them.
            "PARTICIPANTS_LEADER_LOCK_TTL": "10s",
            "REDIS_COMMAND_TIMEOUT": "2s",
            // 2 in flight per instance at 100 ms a call keeps the run going for about 8 s and
            // its backlog at 2 × 2 batches per instance: the leader is still listing when the
            // test kills it (with the default ceiling of 64 it could plan the whole run before
            // the test, slowed by AddressSanitizer, saw 10 batches done).
            "PARTICIPANTS_MAX_BATCHES_IN_FLIGHT": "2",
        ])
        return Instance(name: name, process: process, base: try #require(process.httpBase))
    }

    static func leaders(_ instances: [Instance]) async -> [String] {
        var names: [String] = []
        for instance in instances where await instance.isLeader { names.append(instance.name) }
        return names
    }

    @Test func theOtherProcessFinishesAFullRefreshWhenTheLeaderIsKilled() async throws {
        let redis = try await RedisServer.start()
        defer { redis.cleanup() }
        let chats = 3000
        let (stub, stubBase) = try await ServiceProcess.stubUpstream([
            "--chats", "\(chats)", "--participants-per-chat", "2", "--latency", "100ms",
        ])
        defer { stub.signal(SIGKILL) }

        let instances = [
            try Self.start("process-a", redis: redis, stubBase: stubBase),
            try Self.start("process-b", redis: redis, stubBase: stubBase),
        ]
        defer { for instance in instances { instance.process.signal(SIGKILL) } }
        for instance in instances { try await instance.process.waitUntilAnswering("/ready", bodyContains: nil) }

        // One leader at a time, the same for both.
        var leaderName: String?
        let oneLeads = await eventually(timeout: .seconds(15)) {
            let leading = await Self.leaders(instances)
            leaderName = leading.count == 1 ? leading[0] : nil
            return leaderName != nil
        }
        try #require(oneLeads, "no sole leader within 15 s")
        let leader = try #require(instances.first { $0.name == leaderName })
        let other = try #require(instances.first { $0.name != leaderName })
        // Through three renewals (a whole TTL) the lock keeps its holder, which alone leads, and
        // the other process names it.
        let held = try #require(await redis.watchLeaderLock(renewals: 3))
        #expect(held.count == 1 && held.first?.hasPrefix("\(leader.name):") == true, "\(held)")
        #expect(await Self.leaders(instances) == [leader.name])
        #expect(
            await eventually(timeout: .seconds(5)) {
                (await other.coordination()["leader"] as? [String: Any])?["instance_id"] as? String == leader.name
            })

        // A full refresh asked of the follower, produced by the leader, processed by both.
        let jobID = try #require(await other.admin("POST", "/internal/participants/refresh")["job_id"] as? String)
        let underWay = await eventually(timeout: .seconds(30)) {
            let counts = await other.admin("GET", "/internal/participants/refresh/\(jobID)")["counts"] as? [String: Any]
            return (counts?["batches_done"] as? Int ?? 0) >= 10
        }
        #expect(underWay)
        leader.process.signal(SIGKILL)
        #expect(await leader.process.waitForExit(timeout: .seconds(10)) != nil)
        // It died before planning the run's 300 batches: the listing is left for the next leader.
        // (Read once it has exited, and nobody leads for about a TTL after, so the record is as
        // the dead leader left it.)
        let planned =
            (await other.admin("GET", "/internal/participants/refresh/\(jobID)")["counts"]
            as? [String: Any])?["batches_planned"] as? Int
        #expect((planned ?? 0) < 300, "batches planned when the leader died: \(String(describing: planned))")

        let tookOver = await eventually(timeout: .seconds(50)) { await other.isLeader }
        #expect(tookOver, "log:\n\(other.process.output().suffix(4000))")
        var job: [String: Any] = [:]
        let ended = await eventually(timeout: .seconds(90)) {
            job = await other.admin("GET", "/internal/participants/refresh/\(jobID)")
            return (job["state"] as? String).map { $0 != "running" && $0 != "queued" } ?? false
        }
        try #require(ended, "the refresh had not ended within 90 s: \(job)")
        #expect(job["state"] as? String == "completed", "job \(job)")
        let counts = job["counts"] as? [String: Any]
        #expect(counts?["chats_refreshed"] as? Int == chats)
        #expect(counts?["chats_planned"] as? Int == chats)
        // Killed while it was still listing, the leader's run was carried on by the other.
        #expect(job["leader"] as? String == other.name)
        #expect(job["adoptions"] as? Int == 1)
        let keys = try await redis.cli("--scan", "--pattern", "participants:v1:{chat-*}")
        #expect(keys.split(separator: "\n").count == chats)
        let stream = await other.coordination()["stream"] as? [String: Any]
        #expect(stream?["pending"] as? Int == 0)

        other.process.signal(SIGTERM)
        #expect(await other.process.waitForExit(timeout: .seconds(15)) == 0)
    }
}
