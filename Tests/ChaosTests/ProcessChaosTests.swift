import ChatService
import Foundation
import StubUpstream
import TestSupport
import Testing

extension ChaosSuite {
    /// The service's own process: stopped with SIGTERM, or (with several instances) the leader
    /// killed, while a full run is going.
    @Suite("Process faults", .timeLimit(.minutes(5)))
    struct ProcessFaults {
        @Test func sigtermDuringAFullRun() async throws {
            var record = ScenarioRecord(scenario: "SIGTERM during a full run")
            var settings = ChaosEnvironment.Settings()
            settings.environment = ["PARTICIPANTS_BATCH_SIZE": "10", "SHUTDOWN_TIMEOUT": "6s"]
            let environment = try await ChaosEnvironment.start(settings)
            do {
                try await Self.sigterm(environment, into: &record)
            } catch {
                record.failures.append("scenario aborted: \(error)")
            }
            await environment.shutdown()
            record.append()
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }

        /// Hot reads only: after SIGTERM the listener closes, so only what came before is judged.
        private static func sigterm(_ environment: ChaosEnvironment, into record: inout ScenarioRecord) async throws {
            try await environment.warmHotChats()
            var loadSettings = LoadGenerator.Settings(
                port: environment.httpPort, token: ChaosEnvironment.userToken, hotChats: environment.hotChats,
                coldChats: [])
            loadSettings.workers = 3
            loadSettings.requestsPerSecondPerWorker = 60
            loadSettings.requestTimeout = .seconds(5)
            let load = LoadGenerator(settings: loadSettings)
            load.start()
            // The resident size under load: once the load has made its first hundred reads.
            let loaded = await eventually(timeout: .seconds(30)) { load.figures().hot().requests >= 100 }
            record.check(loaded, "the load generator made no 100 reads within 30 s")
            record.rssBeforeKilobytes = environment.residentKilobytes()
            await environment.bumpAllChats()
            // Slow batches, so SIGTERM finds some in flight and some queued.
            await environment.stub.updateFaults { $0.latency = .milliseconds(250) }
            let reply = await environment.admin("POST", "/internal/participants/refresh")
            guard let jobID = reply.json["job_id"] as? String else {
                record.failures.append("the full refresh was not accepted: \(reply.status)")
                _ = await load.stop()
                return
            }
            let started = await eventually(timeout: .seconds(30)) {
                let job = await environment.admin("GET", "/internal/participants/refresh/\(jobID)").json
                return ((job["counts"] as? [String: Any])?["batches_done"] as? Int ?? 0) >= 3
            }
            record.check(started, "the full run did not get going")
            record.rssAfterKilobytes = environment.residentKilobytes()

            let signalled = ContinuousClock.now
            environment.service.signal(SIGTERM)
            let exit = await environment.service.waitForExit(
                timeout: environment.configuration.shutdownTimeout + .seconds(10))
            record.faultSeconds = (ContinuousClock.now - signalled).milliseconds / 1000
            record.check(exit == 0, "SIGTERM ended the process with \(exit.map(String.init) ?? "no exit")")
            record.processAlive = false
            record.notes.append(
                "SIGTERM: the process exited \(exit.map(String.init) ?? "-") after \(String(format: "%.2f", record.faultSeconds)) s"
            )

            let figures = await load.stop()
            let beforeSignal = LoadFigures(
                samples: figures.samples.filter { $0.completedAt < signalled },
                probes: figures.probes.filter { $0.startedAt + $0.latency < signalled })
            record.take(beforeSignal)
            record.notes.append("reads and probes counted up to SIGTERM; afterwards the listener is closed by design")
            record.check(
                beforeSignal.failedProbes.isEmpty, "\(beforeSignal.failedProbes.count) /health probes got no 200")
            record.check(record.hot.serverErrors == 0, "\(record.hot.serverErrors) hot reads got a 5xx")
            record.check(record.hot.failures == 0, "\(record.hot.failures) hot reads got no answer")

            // With the shared batch stream the leader stops producing at SIGTERM and the run lives
            // on in Redis for the next leader: its record there is the run's word, and every batch
            // appended to the stream is settled or still in the stream for another instance.
            let run = try await SharedRunRecord.read(jobID, from: environment.redis)
            func count(_ key: String) -> Int { run.counts[key] ?? 0 }
            record.batches.jobState = run.state
            record.batches.planned = count("batches_planned") - run.leftInTheStream
            record.batches.done = count("batches_done")
            record.batches.deferred = count("batches_deferred")
            record.batches.failed = count("batches_failed")
            record.batches.skipped = count("batches_skipped")
            record.batches.chatsRefreshed = count("chats_refreshed")
            record.notes.append("SIGTERM: \(run.leftInTheStream) batches left in the stream for the next leader")
            let inRedis = await environment.chatsInRedis(atLeast: 2)
            record.batches.chatsLost = max(0, record.batches.chatsRefreshed - inRedis)
            record.check(
                record.batches.unaccounted == 0, "\(record.batches.unaccounted) planned batches are unaccounted for")
            record.check(record.batches.deferred == 0, "\(record.batches.deferred) batches were only in memory at exit")
            record.check(
                record.batches.chatsLost == 0, "\(record.batches.chatsLost) chats a batch refreshed are not in Redis")
        }

        @Test func leaderKilledDuringAFullRun() async throws {
            var record = ScenarioRecord(scenario: "leader instance SIGKILLed during a full run")
            var settings = ChaosEnvironment.Settings()
            // The lock TTL: see lockTTL below.
            settings.environment = ["PARTICIPANTS_BATCH_SIZE": "10", "PARTICIPANTS_LEADER_LOCK_TTL": "3s"]
            settings.instanceID = "chaos-a"
            let environment = try await ChaosEnvironment.start(settings)
            var second: ServiceProcess?
            do {
                let started = try await environment.startInstance(instanceID: "chaos-b")
                second = started.service
                try await Self.killLeader(environment, other: started, into: &record)
            } catch {
                record.failures.append("scenario aborted: \(error)")
            }
            if let second, second.process.isRunning {
                second.signal(SIGTERM)
                _ = await second.waitForExit(timeout: .seconds(15))
            }
            await environment.shutdown()
            record.append()
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }

        /// Issue 4's design (docs/COORDINATION.md): the lock key `participants:v2:{sync}:leader`
        /// holds `<instance_id>:<token>`, run records are shared in Redis so either instance
        /// answers for a job, and batches a dead instance held are claimed by the others.
        private static func killLeader(
            _ environment: ChaosEnvironment, other: (service: ServiceProcess, port: Int),
            into record: inout ScenarioRecord
        ) async throws {
            let lockKey = "participants:v2:{sync}:leader"
            var holder = ""
            let elected = await eventually(timeout: .seconds(15)) {
                holder = (try? await environment.redis.cli("GET", lockKey)) ?? ""
                return holder.hasPrefix("chaos-a:") || holder.hasPrefix("chaos-b:")
            }
            guard elected else {
                record.failures.append("no instance took the leader lock within 15 s")
                return
            }
            let leaderIsFirst = holder.hasPrefix("chaos-a:")
            let leader = leaderIsFirst ? environment.service : other.service
            let survivorPort = leaderIsFirst ? other.port : environment.httpPort
            let survivorID = leaderIsFirst ? "chaos-b" : "chaos-a"

            try await environment.warmHotChats()
            let load = LoadGenerator(
                settings: LoadGenerator.Settings(
                    port: survivorPort, token: ChaosEnvironment.userToken, hotChats: environment.hotChats,
                    coldChats: environment.coldChats))
            load.start()
            await environment.bumpAllChats()
            await environment.stub.updateFaults { $0.latency = .milliseconds(250) }
            let reply = await environment.admin("POST", "/internal/participants/refresh", port: survivorPort)
            guard let jobID = reply.json["job_id"] as? String else {
                record.failures.append("the full refresh was not accepted: \(reply.status)")
                _ = await load.stop()
                return
            }
            let underWay = await eventually(timeout: .seconds(30)) {
                let job = await environment.admin("GET", "/internal/participants/refresh/\(jobID)", port: survivorPort)
                    .json
                return ((job["counts"] as? [String: Any])?["batches_done"] as? Int ?? 0) >= 3
            }
            record.check(underWay, "the full refresh had not done 3 batches within 30 s before the kill")
            let killed = ContinuousClock.now
            leader.signal(SIGKILL)
            _ = await leader.waitForExit(timeout: .seconds(5))
            let takenOver = await eventually(timeout: .seconds(30)) {
                ((try? await environment.redis.cli("GET", lockKey)) ?? "").hasPrefix("\(survivorID):")
            }
            record.check(takenOver, "\(survivorID) did not take the leader lock within 30 s")
            record.recoverySeconds = takenOver ? (ContinuousClock.now - killed).milliseconds / 1000 : nil
            // The lock outlives its dead holder by at most its TTL; the survivor retries every third of it.
            let lockTTL = Duration.seconds(3)
            record.recoveryBoundSeconds = lockTTL.milliseconds / 1000
            if let recovery = record.recoverySeconds {
                record.check(
                    recovery <= (lockTTL + .seconds(5)).milliseconds / 1000,
                    "the survivor took the lock \(recovery) s after the leader died (TTL \(lockTTL), slack 5 s)")
            }
            await environment.stub.clearFaults()
            let job = await environment.waitForJob(jobID, timeout: .seconds(180), port: survivorPort)
            record.check(job != nil, "the full run did not end within 180 s of the leader's death")
            if let job { record.batches = ChaosScenario.batches(of: job) }
            let inRedis = await environment.chatsInRedis(atLeast: 2)
            record.batches.chatsLost = max(0, record.batches.chatsRefreshed - inRedis)
            record.check(
                record.batches.unaccounted == 0, "\(record.batches.unaccounted) planned batches are unaccounted for")
            record.check(
                record.batches.chatsLost == 0, "\(record.batches.chatsLost) chats a batch refreshed are not in Redis")
            let figures = await load.stop()
            record.take(figures)
            record.check(
                figures.failedProbes.isEmpty, "\(figures.failedProbes.count) /health probes of the survivor got no 200")
            record.check(record.hot.serverErrors == 0, "\(record.hot.serverErrors) hot reads got a 5xx")
        }
    }
}

/// A shared run's record in Redis and the batches of the stream nobody has settled yet.
struct SharedRunRecord {
    var state: String?
    var counts: [String: Int]
    var leftInTheStream: Int

    static func read(_ id: String, from redis: RedisServer) async throws -> SharedRunRecord {
        let lines = try await redis.cli("HGETALL", "participants:v2:{sync}:run:\(id)")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var counts: [String: Int] = [:]
        var state: String?
        var index = 0
        while index + 1 < lines.count {
            if lines[index] == "state" { state = lines[index + 1] }
            if let number = Int(lines[index + 1]) { counts[lines[index]] = number }
            index += 2
        }
        let key = "participants:v2:{sync}:batches"
        let info = try await redis.cli("XINFO", "GROUPS", key).split(separator: "\n").map(String.init)
        func value(_ name: String) -> String? {
            guard let position = info.firstIndex(of: name), position + 1 < info.count else { return nil }
            return info[position + 1]
        }
        let pending = Int(value("pending") ?? "0") ?? 0
        let undelivered = try await redis.cli(
            "EVAL", "return #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')", "1", key,
            value("last-delivered-id") ?? "0-0")
        let left = pending + (Int(undelivered.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
        return SharedRunRecord(state: state, counts: counts, leftInTheStream: left)
    }
}
