import ChatService
import Foundation
import TestSupport
import Testing

/// SIGTERM on the real binary, with a real redis-server and the stub upstream as subprocesses:
/// in-flight requests are answered, new connections refused, a full run in progress ends
/// `cancelled` with every batch accounted for, Redis closes after the batches, and the process
/// exits 0 within SHUTDOWN_TIMEOUT even when upstream hangs.
@Suite("Graceful drain", .serialized, .timeLimit(.minutes(2)))
struct GracefulDrainTests {
    static let jwtSecret = TestServiceEnvironment.jwtSecret
    static let adminToken = TestServiceEnvironment.adminToken
    /// Added to SHUTDOWN_TIMEOUT when waiting for the exit: process start-up and teardown on a
    /// busy machine. The drain itself is bounded by 4/5 of SHUTDOWN_TIMEOUT.
    static let exitSlack: Duration = .seconds(5)

    /// The service deployed as processes: redis-server, `chat-service stub-upstream` and
    /// `chat-service serve` (the subprocess fixtures of TestSupport), started in that order.
    final class ProcessDeployment: Sendable {
        let redis: RedisServer
        let stub: ServiceProcess
        let stubBase: String
        let service: ServiceProcess
        let httpPort: Int
        let base: String
        let shutdownTimeout: Duration

        init(chats: Int, stubLatency: String, shutdownTimeout: Duration, batchSize: Int) async throws {
            redis = try await RedisServer.start()
            (stub, stubBase) = try await ServiceProcess.stubUpstream([
                "--chats", "\(chats)", "--participants-per-chat", "5", "--latency", stubLatency,
            ])
            self.shutdownTimeout = shutdownTimeout
            service = try ServiceProcess.serve(environment: [
                "REDIS_URL": redis.url,
                "PARTICIPANTS_API_URL": stubBase,
                "PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "false",
                "PARTICIPANTS_BATCH_SIZE": "\(batchSize)",
                "PARTICIPANTS_MAX_BATCHES_IN_FLIGHT": "4",
                "SHUTDOWN_TIMEOUT": "\(shutdownTimeout.components.seconds)s",
                "LOG_FORMAT": "json",
            ])
            base = try #require(service.httpBase)
            httpPort = try #require(Int(service.environment["HTTP_PORT"] ?? ""))
            try await service.waitUntilAnswering("/health")
        }

        /// Stops the stub and Redis; the service has exited (or is killed by its deinit).
        func close() async {
            stub.signal(SIGTERM)
            _ = await stub.waitForExit(timeout: .seconds(10))
            redis.cleanup()
        }

        func admin(_ method: String, _ path: String) async -> (status: Int, json: [String: Any])? {
            guard
                let reply = await httpRequest(
                    method, base + path, headers: ["Authorization": "Bearer \(GracefulDrainTests.adminToken)"],
                    timeout: .seconds(10))
            else { return nil }
            return (reply.status, GracefulDrainTests.object(reply.body))
        }

        /// How many requests for `chat` reached the stub.
        func stubRequests(forChat chat: String) async -> Int {
            guard let reply = await httpGet("\(stubBase)/admin/stats/chats/\(chat)") else { return 0 }
            return GracefulDrainTests.object(reply.body)["requests"] as? Int ?? 0
        }

        /// Requests the stub holds unanswered (its `hang` fault).
        func stubHanging() async -> Int {
            guard let reply = await httpGet("\(stubBase)/admin/stats") else { return 0 }
            return GracefulDrainTests.object(reply.body)["hanging"] as? Int ?? 0
        }

        /// SIGTERM, then the exit status within SHUTDOWN_TIMEOUT (plus slack); nil if still running.
        func terminate() async -> Int32? {
            service.signal(SIGTERM)
            return await service.waitForExit(timeout: shutdownTimeout + GracefulDrainTests.exitSlack)
        }

        /// The service's JSON log lines, in order.
        func logLines() -> [[String: Any]] {
            service.output().split(separator: "\n").map { GracefulDrainTests.object(String($0)) }
        }

        /// The run's record in Redis (`participants:v2:{sync}:run:<id>`), numeric fields only.
        func runCounts(_ id: String) async throws -> (state: String?, counts: [String: Int]) {
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
            return (state, counts)
        }

        /// Batches of the shared stream that no instance has settled: delivered but not
        /// acknowledged (pending) plus not yet delivered. The next leader's instances take them.
        func batchesLeftInTheStream() async throws -> Int {
            let key = "participants:v2:{sync}:batches"
            let info = try await redis.cli("XINFO", "GROUPS", key).split(separator: "\n").map(String.init)
            func value(_ name: String) -> String? {
                guard let index = info.firstIndex(of: name), index + 1 < info.count else { return nil }
                return info[index + 1]
            }
            let pending = Int(value("pending") ?? "0") ?? 0
            let lastDelivered = value("last-delivered-id") ?? "0-0"
            let undelivered = try await redis.cli(
                "EVAL", "return #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')", "1", key, lastDelivered)
            return pending + (Int(undelivered.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
        }

        /// Entries of chats stored in Redis (not the 404 markers nor the sync keys).
        func storedEntries() async throws -> Int {
            let keys = try await redis.cli("--scan", "--pattern", "participants:v1:{chat-*}")
            return keys.split(separator: "\n").count
        }
    }

    /// Runs `body` against a fresh deployment and stops it afterwards, also when `body` throws.
    static func withDeployment(
        chats: Int, stubLatency: String, shutdownTimeout: Duration, batchSize: Int = 50,
        _ body: (ProcessDeployment) async throws -> Void
    ) async throws {
        let deployment = try await ProcessDeployment(
            chats: chats, stubLatency: stubLatency, shutdownTimeout: shutdownTimeout, batchSize: batchSize)
        do {
            try await body(deployment)
        } catch {
            await deployment.close()
            throw error
        }
        await deployment.close()
    }

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    static func counts(_ line: [String: Any]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for (key, value) in line where key.hasPrefix("sync.") {
            if let text = value as? String, let number = Int(text) { counts[String(key.dropFirst(5))] = number }
        }
        return counts
    }

    /// Waits until the run `jobID` has at least `batches` batches done; false after `timeout`.
    static func waitForBatches(_ deployment: ProcessDeployment, jobID: String, atLeast batches: Int, timeout: Duration)
        async -> Bool
    {
        await eventually(timeout: timeout) {
            guard let run = await deployment.admin("GET", "/internal/participants/refresh/\(jobID)")?.json,
                let counts = run["counts"] as? [String: Any]
            else { return false }
            return (counts["batches_done"] as? Int ?? 0) >= batches
        }
    }

    // MARK: Tests

    @Test func aSlowRequestInFlightIsAnsweredWhileReadyTurns503AndNewConnectionsAreRefused() async throws {
        try await Self.withDeployment(chats: 20, stubLatency: "2s", shutdownTimeout: .seconds(10)) { deployment in
            let port = deployment.httpPort

            // A keep-alive connection opened before SIGTERM: the only way to ask /ready while draining,
            // since the listener closes at once.
            let idle = try RawHTTPConnection(port: port, timeout: .seconds(5))
            try idle.send("GET /ready HTTP/1.1\r\nHost: t\r\n\r\n")
            let readyBefore = try await offloadBlocking { try idle.readResponse() }
            #expect(readyBefore.status == 200)

            let token = mintUserToken(subject: "drain", secret: Self.jwtSecret, validFor: .seconds(600))
            let slow = Task {
                await httpGet(
                    "\(deployment.base)/v1/chats/chat-7/participants", headers: ["Authorization": "Bearer \(token)"],
                    timeout: .seconds(30))
            }
            let reachedUpstream = await eventually(timeout: .seconds(10)) {
                await deployment.stubRequests(forChat: "chat-7") >= 1
            }
            try #require(reachedUpstream, "the cold read never reached the stub; log:\n\(deployment.service.output())")

            deployment.service.signal(SIGTERM)

            // /ready answers 503 on the open connection once the drain began (200 until the signal
            // is handled), with Connection: close.
            var readyWhileDraining: RawHTTPResponse?
            for _ in 0..<200 where readyWhileDraining == nil {
                try idle.send("GET /ready HTTP/1.1\r\nHost: t\r\n\r\n")
                let reply = try await offloadBlocking { try idle.readResponse() }
                if reply.status == 503 {
                    readyWhileDraining = reply
                } else {
                    try await Task.sleep(for: .milliseconds(10))
                } // polls /ready
            }
            let draining = try #require(
                readyWhileDraining, "/ready never answered 503 while the slow request was in flight")
            #expect(draining.bodyText.contains(#""draining""#))
            #expect(draining.header("Connection")?.lowercased() == "close")

            // The listener is closed: a new connection is refused while the slow request is still going.
            #expect(throws: RawSocketError.system("connect", ECONNREFUSED)) {
                _ = try RawHTTPConnection(port: port, timeout: .seconds(2))
            }

            let reply = await slow.value
            #expect(
                reply?.status == 200, "the in-flight request was not answered; log:\n\(deployment.service.output())")
            #expect(reply?.body.contains(#""chat_id":"chat-7""#) == true)

            let status = await deployment.service.waitForExit(timeout: deployment.shutdownTimeout + Self.exitSlack)
            #expect(status == 0, "log:\n\(deployment.service.output())")
        }
    }

    @Test func aFullRefreshInterruptedBySIGTERMLeavesEveryBatchSettledOrInTheStream() async throws {
        // 80 batches at 4 in flight and 500 ms a call: 10 s to complete, far more than the test takes
        // to see two batches done and send SIGTERM, even under a sanitizer.
        try await Self.withDeployment(chats: 4000, stubLatency: "500ms", shutdownTimeout: .seconds(10)) { deployment in

            let started = try #require(await deployment.admin("POST", "/internal/participants/refresh"))
            #expect(started.status == 202)
            let jobID = try #require(started.json["job_id"] as? String)
            let progressed = await Self.waitForBatches(deployment, jobID: jobID, atLeast: 2, timeout: .seconds(30))
            try #require(progressed, "the full run made no progress; log:\n\(deployment.service.output())")

            let status = await deployment.terminate()
            #expect(status == 0, "log:\n\(deployment.service.output())")

            // The leader stops producing; the run lives on in Redis for the next leader, and
            // every batch appended to the shared stream is settled or still there to be taken.
            let lines = deployment.logLines()
            // Either the producer was still listing (it stops) or it had planned every batch.
            let stoppedProducing = try #require(
                lines.firstIndex {
                    let message = $0["message"] as? String ?? ""
                    return message.hasPrefix("stopped producing") || message.hasPrefix("sync run planned")
                },
                "no 'stopped producing' or 'sync run planned' line; log:\n\(deployment.service.output())")
            let run = try await deployment.runCounts(jobID)
            #expect(run.state == "running", "a 4000-chat run at 500 ms a call cannot have completed: \(run)")
            let planned = try #require(run.counts["batches_planned"])
            #expect(planned >= 2)
            let settled =
                run.counts["batches_done", default: 0] + run.counts["batches_failed", default: 0]
                + run.counts["batches_skipped", default: 0]
            let left = try await deployment.batchesLeftInTheStream()
            #expect(
                planned == settled + left,
                "planned \(planned), settled \(settled), left in the stream \(left): \(run.counts)")
            #expect(settled >= 2, "the batches in hand were not finished: \(run.counts)")
            // What the run counts as refreshed is what Redis holds: nothing was lost on the way out.
            #expect(try await deployment.storedEntries() == run.counts["chats_refreshed"])

            // Redis closes after producing stopped and the batches in hand settled, not under them.
            let redisStopped = lines.firstIndex { $0["redis.state.to"] as? String == "stopped" }
            #expect(redisStopped.map { $0 > stoppedProducing } == true, "Redis closed before the drain")
            #expect(lines.contains { $0["message"] as? String == "chat-service stopped" })
        }
    }

    @Test func aHangingUpstreamCannotHoldTheDrainPastShutdownTimeout() async throws {
        // Batches of 10: a page of 100 chats makes 10 batches, more than the 4 in flight, so
        // batches are in flight whenever upstream starts hanging.
        try await Self.withDeployment(chats: 1000, stubLatency: "300ms", shutdownTimeout: .seconds(3), batchSize: 10) {
            deployment in

            let started = try #require(await deployment.admin("POST", "/internal/participants/refresh"))
            let jobID = try #require(started.json["job_id"] as? String)
            let progressed = await Self.waitForBatches(deployment, jobID: jobID, atLeast: 1, timeout: .seconds(30))
            try #require(progressed, "the full run made no progress; log:\n\(deployment.service.output())")

            // From now on upstream never answers: the batches in flight and a cold read hang.
            let hang = await httpRequest(
                "PUT", "\(deployment.stubBase)/admin/faults", body: Data(#"{"hang":true}"#.utf8))
            try #require(hang?.status == 200)
            let token = mintUserToken(subject: "drain", secret: Self.jwtSecret, validFor: .seconds(600))
            let coldRead = Task {
                await httpGet(
                    "\(deployment.base)/v1/chats/chat-999/participants", headers: ["Authorization": "Bearer \(token)"],
                    timeout: .seconds(30))
            }
            let parked = await eventually(timeout: .seconds(10)) {
                guard await deployment.stubRequests(forChat: "chat-999") >= 1 else { return false }
                return await deployment.stubHanging() >= 3
            }
            try #require(
                parked, "the cold read and the batches in flight did not all hang; log:\n\(deployment.service.output())"
            )

            let status = await deployment.terminate()
            #expect(status == 0, "no clean exit within SHUTDOWN_TIMEOUT; log:\n\(deployment.service.output())")
            // The drain gave up on the hanging read: its connection closed without an answer.
            let reply = await coldRead.value
            #expect(reply == nil || reply?.status != 200)

            // The hanging batches were given up at the drain bound: not acknowledged, so they stay
            // in the stream for another instance; nothing is lost from the accounting.
            let run = try await deployment.runCounts(jobID)
            let planned = try #require(run.counts["batches_planned"])
            let settled =
                run.counts["batches_done", default: 0] + run.counts["batches_failed", default: 0]
                + run.counts["batches_skipped", default: 0]
            let left = try await deployment.batchesLeftInTheStream()
            #expect(left >= 1, "the hanging batches should be left for another instance: \(run.counts)")
            #expect(planned == settled + left, "planned \(planned), settled \(settled), left \(left): \(run.counts)")
        }
    }
}
