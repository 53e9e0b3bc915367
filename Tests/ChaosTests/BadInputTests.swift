import Actors
import ChatRuntime
import ChatService
import Foundation
import Logging
import ServiceLifecycle
import StubUpstream
import TestSupport
import Testing

extension ChaosSuite {
    /// A flood of generated hostile requests against the whole service in-process (the real
    /// routes through ``buildServices``, a real redis-server, the stub upstream), plus slowloris
    /// connections: every request gets a 4xx (2xx when it was valid) or a close in bounded time,
    /// never a 5xx or silence, and the service still answers afterwards.
    @Suite("Bad input", .timeLimit(.minutes(10)))
    struct BadInput {
        static let requestTimeout: Duration = .seconds(2)
        /// The whole-request deadline: what ends a client that drips faster than the read timeout.
        static let requestDeadline: Duration = .seconds(5)

        /// The whole service in-process (``InProcessService``) with backends of its own, quiet
        /// (errors only in the log).
        static func startService(chats: Int) async throws -> InProcessService {
            var logger = Logger(label: "test.bad-input")
            logger.logLevel = .error
            return try await InProcessService.start(
                chats: chats, participantsPerChat: 3,
                environment: [
                    "PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "false",
                    "HTTP_REQUEST_TIMEOUT": "\(BadInput.requestTimeout.components.seconds)s",
                    "HTTP_REQUEST_DEADLINE": "\(BadInput.requestDeadline.components.seconds)s",
                    "JWT_SECRET": ChaosEnvironment.jwtSecret, "ADMIN_TOKEN": ChaosEnvironment.adminToken,
                ],
                logger: logger, readiness: .redis)
        }

        @Test func floodOfGeneratedRequestsIsRefusedInBoundedTime() async throws {
            let total = ChaosMode.pick(fast: 10_000, full: 100_000)
            let threads = 4
            let chats = 50
            let service = try await Self.startService(chats: chats)
            var record = ScenarioRecord(scenario: "bad input: \(total) generated requests + slowloris")
            let port = service.httpPort
            let maxBody = service.application.configuration.http.maxBodySize
            let started = ContinuousClock.now

            // Slowloris alongside the flood: some drip faster than the read timeout, some slower.
            let slowlorisCount = ChaosMode.pick(fast: 8, full: 32)
            let slowlorisLimit = ChaosMode.pick(fast: Duration.seconds(15), full: .seconds(40))
            let slowDrip = Self.requestTimeout + .seconds(1)
            let slowloris = Task {
                await withTaskGroup(of: (fast: Bool, result: SlowlorisClient.Result).self) { group in
                    for index in 0..<slowlorisCount {
                        let fast = index % 2 == 0
                        let interval: Duration = fast ? .milliseconds(500) : slowDrip
                        group.addTask {
                            let result =
                                (try? await offloadBlocking {
                                    SlowlorisClient.drip(port: port, interval: interval, limit: slowlorisLimit)
                                })
                                ?? SlowlorisClient.Result(closedAfter: .zero, status: nil)
                            return (fast, result)
                        }
                    }
                    return await group.reduce(into: [(fast: Bool, result: SlowlorisClient.Result)]()) { $0.append($1) }
                }
            }

            var counts = BadInputCounts()
            var samples: [String] = []
            await withTaskGroup(of: (BadInputCounts, [String]).self) { group in
                for thread in 0..<threads {
                    group.addTask {
                        (try? await offloadBlocking {
                            Self.flood(
                                count: total / threads, seed: UInt64(thread + 1), port: port, chats: chats,
                                maxBody: maxBody)
                        }) ?? (BadInputCounts(), ["thread \(thread) failed to run"])
                    }
                }
                for await (partial, partialSamples) in group {
                    counts.merge(partial)
                    samples += partialSamples
                }
            }
            let slow = await slowloris.value
            counts.slowlorisConnections = slow.count
            counts.slowlorisStillOpen = slow.filter { $0.result.closedAfter == nil }.count
            counts.slowlorisMaxOpenSeconds = slow.compactMap(\.result.closedAfter).max().map { $0.milliseconds / 1000 }
            // A client slower than HTTP_REQUEST_TIMEOUT between bytes is cut off by the read
            // timeout. One that drips faster restarts the read timeout with every byte, and is
            // cut off by HTTP_REQUEST_DEADLINE instead (ServerConnection).
            let slowOnes = slow.filter { !$0.fast }.map(\.result)
            let slowClosedWithin = Self.requestTimeout + slowDrip + .seconds(3)
            record.check(
                slowOnes.allSatisfy { ($0.closedAfter ?? .seconds(3600)) <= slowClosedWithin },
                "a slowloris client dripping slower than the read timeout was not closed within \(slowClosedWithin)")
            let fastOnes = slow.filter(\.fast).map(\.result)
            let fastClosedWithin = Self.requestDeadline + .seconds(3)
            record.check(
                fastOnes.allSatisfy { ($0.closedAfter ?? .seconds(3600)) <= fastClosedWithin },
                "a slowloris client dripping faster than the read timeout was not closed within \(fastClosedWithin)")
            record.badInput = counts
            record.faultSeconds = (ContinuousClock.now - started).milliseconds / 1000

            record.check(
                counts.requests == total / threads * threads, "only \(counts.requests) of \(total) requests were made")
            record.check(
                counts.violations == 0,
                "\(counts.violations) requests broke their expectation; e.g. \(samples.prefix(10).joined(separator: " | "))"
            )
            record.check(counts.serverErrors == 0, "\(counts.serverErrors) requests got a 5xx")
            record.check(
                counts.silent == 0,
                "\(counts.silent) requests got neither an answer nor a close within \(Self.requestTimeout * 2)")
            let health = await httpGet("http://127.0.0.1:\(port)/health", timeout: .seconds(5))
            record.check(
                health?.status == 200,
                "/health answered \(health.map { String($0.status) } ?? "nothing") after the flood")
            let read = await httpGet(
                "http://127.0.0.1:\(port)/v1/chats/chat-1/participants",
                headers: ["Authorization": "Bearer \(ChaosEnvironment.userToken)"], timeout: .seconds(5))
            record.check(
                read?.status == 200,
                "a valid read answered \(read.map { String($0.status) } ?? "nothing") after the flood")
            if counts.notImplemented > 0 {
                record.notes.append(
                    "\(counts.notImplemented) requests with a method the server does not implement (CONNECT) got its JSON 501 "
                        + "(RFC 9110 §9.1); counted apart from 5xx")
            }
            await service.close()
            record.append()
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }

        /// Methods the server routes; any other gets a 405 or 404 (JSON), CONNECT a 501.
        static let implementedMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]

        static func methodToken(of bytes: [UInt8]) -> String {
            String(
                decoding: bytes.prefix { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }.prefix(32), as: UTF8.self
            )
        }

        /// One thread's share: `count` generated requests, one connection each.
        static func flood(count: Int, seed: UInt64, port: Int, chats: Int, maxBody: Int) -> (BadInputCounts, [String]) {
            var generator = BadRequestGenerator(
                seed: seed, userToken: ChaosEnvironment.userToken, adminToken: ChaosEnvironment.adminToken,
                knownChats: chats, maxBodySize: maxBody)
            var counts = BadInputCounts()
            var samples: [String] = []
            for _ in 0..<count {
                let request = generator.next()
                let outcome = BadInputClient.exchange(request, port: port, timeout: requestTimeout * 2)
                let outcomeClass: String
                switch outcome {
                case .status(501) where !Self.implementedMethods.contains(Self.methodToken(of: request.bytes)):
                    outcomeClass = "501"
                case .status(let status) where (200..<300).contains(status): outcomeClass = "2xx"
                case .status(let status) where (400..<500).contains(status): outcomeClass = "4xx"
                case .status(let status) where (500..<600).contains(status): outcomeClass = "5xx"
                case .status: outcomeClass = "other"
                case .closed: outcomeClass = "closed"
                case .silent: outcomeClass = "silent"
                case .connectFailed: outcomeClass = "other"
                }
                counts.add(outcomeClass, category: request.category)
                let acceptable: Bool
                switch request.expectation {
                case .success: acceptable = outcomeClass == "2xx"
                case .rejection: acceptable = ["4xx", "closed", "501"].contains(outcomeClass)
                case .successOrRejection: acceptable = ["2xx", "4xx", "closed"].contains(outcomeClass)
                }
                if !acceptable {
                    counts.violations += 1
                    if samples.count < 5 {
                        let shown = String(decoding: request.bytes.prefix(120), as: UTF8.self).debugDescription
                        samples.append("\(request.category) \(outcome): \(shown)")
                    }
                }
            }
            return (counts, samples)
        }
    }
}
