import Actors
import Foundation
import Logging
import ChatRuntime
import StubUpstream
import Testing
import TestSupport

/// ``UpstreamClient`` against an in-process ``StubUpstream`` on a loopback port: each call,
/// the token, retries, Retry-After, malformed bodies, hangs, refused connections and the
/// circuit breaker. The stub's own counts prove how many requests really went out.
@Suite("UpstreamClient", .serialized, .timeLimit(.minutes(1)))
struct UpstreamClientTests {
    static let logger = Logger(label: "test.upstream-client")

    /// A stub on its own loop and a client on another, torn down by ``close()``.
    struct Fixture {
        let stubLoop: EventLoop
        let clientLoop: EventLoop
        let stub: StubUpstream
        let client: UpstreamClient
        let port: Int

        init(
            chats: Int = 25, participants: Int = 3, stubToken: String? = nil, clientToken: String? = nil,
            settings: UpstreamClient.Settings = UpstreamClientTests.fastSettings(), clientPort: Int? = nil
        ) async throws {
            stubLoop = EventLoop(name: "stub-upstream")
            clientLoop = EventLoop(name: "upstream-client")
            stub = StubUpstream(
                settings: .init(chats: chats, participantsPerChat: participants, token: stubToken, maxHang: .seconds(30)),
                loop: stubLoop, logger: UpstreamClientTests.logger)
            port = try await stub.start(port: 0)
            client = try UpstreamClient(
                loop: clientLoop, baseURL: "http://127.0.0.1:\(clientPort ?? port)", token: clientToken, settings: settings,
                random: SeededRandom(seed: 42), logger: UpstreamClientTests.logger)
        }

        func close() async {
            await client.close()
            await stub.shutdown()
            clientLoop.stop()
            stubLoop.stop()
        }
    }

    /// Short waits so retries do not slow the suite; deadlines generous for a loaded machine.
    static func fastSettings(
        maxCallDuration: Duration = .seconds(10), perAttemptTimeout: Duration? = nil, maxAttempts: Int = 3,
        breakerFailureThreshold: Int = 50, breakerOpenDuration: Duration = .seconds(10)
    ) -> UpstreamClient.Settings {
        UpstreamClient.Settings(
            maxCallDuration: maxCallDuration, perAttemptTimeout: perAttemptTimeout, maxAttempts: maxAttempts,
            backoff: Backoff(initial: .milliseconds(10), maximum: .milliseconds(50)),
            breakerFailureThreshold: breakerFailureThreshold, breakerOpenDuration: breakerOpenDuration)
    }

    static func id(_ text: String) -> ChatID { ChatID(validating: text)! }

    /// The error a failing call ends with, or nil if it succeeded.
    static func failure<T>(_ body: () async throws(UpstreamError) -> T) async -> UpstreamError? {
        do {
            _ = try await body()
            return nil
        } catch {
            return error
        }
    }

    // MARK: Happy paths

    @Test func eachCallReturnsTheStubsData() async throws {
        let fixture = try await Fixture()
        let dataset = await fixture.stub.dataset

        let chat = try await fixture.client.participants(of: Self.id("chat-3"))
        #expect(chat == dataset.chat(3))

        let batch = try await fixture.client.batchGet(["chat-1", "chat-2", "chat-999", "chat-2"].map(Self.id))
        #expect(batch.chats == [dataset.chat(1), dataset.chat(2)])
        #expect(batch.notFound == ["chat-999"])
        #expect(batch.rejected.isEmpty)
        #expect(batch.missingIDs(from: ["chat-1", "chat-2", "chat-999"].map(Self.id)).isEmpty)

        var listed: [String] = []
        var token: String?
        var pages = 0
        repeat {
            let page = try await fixture.client.listChats(pageSize: 10, pageToken: token)
            listed += page.chatIDs.map(\.rawValue)
            token = page.nextPageToken
            pages += 1
        } while token != nil && pages < 10
        #expect(listed == (1...25).map { "chat-\($0)" })
        #expect(pages == 3)

        let statistics = await fixture.client.statistics
        #expect(statistics.calls == 5 && statistics.successes == 5 && statistics.attempts == 5 && statistics.retries == 0)
        #expect(await fixture.stub.statistics.totalRequests == 5)
        #expect(await fixture.stub.requestCount(forChat: "chat-2") == 1)
        await fixture.close()
    }

    @Test func anEmptyBatchMakesNoRequest() async throws {
        let fixture = try await Fixture()
        let batch = try await fixture.client.batchGet([])
        #expect(batch.chats.isEmpty && batch.notFound.isEmpty)
        #expect(await fixture.stub.statistics.totalRequests == 0)
        await fixture.close()
    }

    @Test func sendsTheBearerTokenAndReportsAWrongOneWithoutRetrying() async throws {
        let good = try await Fixture(stubToken: "s3cret", clientToken: "s3cret")
        #expect(try await good.client.participants(of: Self.id("chat-1")) != nil)
        #expect(await good.stub.statistics.unauthorized == 0)
        await good.close()

        for token in ["wrong", nil] as [String?] {
            let bad = try await Fixture(stubToken: "s3cret", clientToken: token)
            let error = await Self.failure { () async throws(UpstreamError) in try await bad.client.participants(of: Self.id("chat-1")) }
            #expect(error?.code == .unauthorized)
            #expect(error?.status == 401)
            #expect(await bad.stub.statistics.unauthorized == 1)
            #expect(await bad.client.statistics.circuitState == .closed)
            await bad.close()
        }
    }

    @Test func notFoundIsNilNotAnError() async throws {
        let fixture = try await Fixture(settings: Self.fastSettings(breakerFailureThreshold: 1))
        #expect(try await fixture.client.participants(of: Self.id("chat-404")) == nil)
        #expect(try await fixture.client.participants(of: Self.id("chat-404")) == nil)
        let statistics = await fixture.client.statistics
        #expect(statistics.notFound == 2 && statistics.successes == 2 && statistics.errors.isEmpty)
        #expect(statistics.circuitState == .closed)
        #expect(await fixture.stub.statistics.requests(.participants) == 2)
        await fixture.close()
    }

    // MARK: Retries

    @Test func a503IsRetriedAndTheSecondAttemptSucceeds() async throws {
        let fixture = try await Fixture()
        await fixture.stub.updateFaults { $0.failNext = 1 }
        #expect(try await fixture.client.participants(of: Self.id("chat-5")) != nil)
        #expect(await fixture.stub.requestCount(forChat: "chat-5") == 2)
        #expect(await fixture.stub.statistics.injected(.failNext) == 1)
        let statistics = await fixture.client.statistics
        #expect(statistics.attempts == 2 && statistics.retries == 1 && statistics.successes == 1)
        await fixture.close()
    }

    @Test func aServerErrorStormEndsAfterMaxAttempts() async throws {
        let fixture = try await Fixture(settings: Self.fastSettings(maxAttempts: 4))
        await fixture.stub.updateFaults { $0.errorRate = 1 }
        let error = await Self.failure { () async throws(UpstreamError) in try await fixture.client.batchGet([Self.id("chat-1")]) }
        #expect(error?.code == .server)
        #expect(error?.status == 503)
        #expect(await fixture.stub.statistics.requests(.batchGet) == 4)
        #expect(await fixture.stub.requestCount(forChat: "chat-1") == 4)
        let statistics = await fixture.client.statistics
        #expect(statistics.attempts == 4 && statistics.retries == 3 && statistics.errors(.server) == 1)
        await fixture.close()
    }

    @Test func retryAfterIsHonoured() async throws {
        let fixture = try await Fixture()
        await fixture.stub.updateFaults {
            $0.failNext = 1
            $0.failStatus = 429
            $0.retryAfterSeconds = 1
        }
        let started = ContinuousClock.now
        let page = try await fixture.client.listChats(pageSize: 5, pageToken: nil)
        #expect(page.chatIDs.count == 5)
        // A lower bound only: the client must have waited the second upstream asked for.
        #expect(ContinuousClock.now - started >= .milliseconds(950))
        #expect(await fixture.stub.statistics.requests(.listChats) == 2)
        #expect(await fixture.client.statistics.retries == 1)
        await fixture.close()
    }

    @Test func aRetryAfterBeyondTheDeadlineFailsAtOnce() async throws {
        let fixture = try await Fixture(settings: Self.fastSettings(maxCallDuration: .seconds(3)))
        await fixture.stub.updateFaults {
            $0.rate429 = 1
            $0.retryAfterSeconds = 30
        }
        let started = ContinuousClock.now
        let error = await Self.failure { () async throws(UpstreamError) in try await fixture.client.participants(of: Self.id("chat-1")) }
        #expect(error?.code == .rateLimited)
        #expect(error?.status == 429)
        #expect(ContinuousClock.now - started < .seconds(20), "waited out the Retry-After")
        #expect(await fixture.stub.statistics.requests(.participants) == 1)
        await fixture.close()
    }

    // MARK: Malformed answers

    @Test(arguments: [StubFaults.MalformedKind.notJSON, .wrongTypes, .truncated])
    func malformedBodiesAreTypedCountedAndNotRetried(kind: StubFaults.MalformedKind) async throws {
        let fixture = try await Fixture()
        await fixture.stub.updateFaults {
            $0.malformedRate = 1
            $0.malformedKind = kind
        }
        let calls: [@Sendable () async -> UpstreamError?] = [
            { await Self.failure { () async throws(UpstreamError) in try await fixture.client.participants(of: Self.id("chat-2")) } },
            { await Self.failure { () async throws(UpstreamError) in try await fixture.client.batchGet([Self.id("chat-2")]) } },
            { await Self.failure { () async throws(UpstreamError) in try await fixture.client.listChats(pageSize: 3, pageToken: nil) } },
        ]
        for call in calls {
            let error = await call()
            #expect(error?.code == .malformed, "\(String(describing: error))")
            #expect(error?.status == 200)
        }
        #expect(await fixture.stub.statistics.totalRequests == 3)
        #expect(await fixture.stub.statistics.injected(.malformed) == 3)
        let statistics = await fixture.client.statistics
        #expect(statistics.errors(.malformed) == 3 && statistics.retries == 0)
        await fixture.close()
    }

    @Test func onlyBodiesThatAreNotJSONCountAgainstTheBreaker() async throws {
        let fixture = try await Fixture(settings: Self.fastSettings(maxAttempts: 1, breakerFailureThreshold: 1))
        await fixture.stub.updateFaults {
            $0.malformedRate = 1
            $0.malformedKind = .wrongTypes
        }
        for _ in 0..<3 {
            let error = await Self.failure { () async throws(UpstreamError) in try await fixture.client.participants(of: Self.id("chat-1")) }
            #expect(error?.code == .malformed)
        }
        #expect(await fixture.client.statistics.circuitState == .closed, "a bad record cut off every chat")
        await fixture.stub.updateFaults { $0.malformedKind = .truncated }
        let error = await Self.failure { () async throws(UpstreamError) in try await fixture.client.participants(of: Self.id("chat-1")) }
        #expect(error?.code == .malformed)
        #expect(await fixture.client.statistics.circuitState == .open)
        await fixture.close()
    }

    // MARK: Hangs, refusals, cancellation

    @Test func aHangingUpstreamTimesOutWithinTheCallBound() async throws {
        let fixture = try await Fixture(settings: Self.fastSettings(maxCallDuration: .milliseconds(300)))
        await fixture.stub.updateFaults { $0.hang = true }
        let started = ContinuousClock.now
        let error = await Self.failure { () async throws(UpstreamError) in try await fixture.client.participants(of: Self.id("chat-1")) }
        #expect(error?.code == .timeout)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(await fixture.stub.hangingRequests >= 1)
        await fixture.stub.clearFaults()
        #expect(await eventually(timeout: .seconds(5)) { await fixture.stub.hangingRequests == 0 })
        // The next call works again (a fresh connection, the hung one was cancelled).
        #expect(try await fixture.client.participants(of: Self.id("chat-1")) != nil)
        await fixture.close()
    }

    @Test func aCancelledCallEndsPromptlyAndLeavesTheBreakerAlone() async throws {
        let fixture = try await Fixture(settings: Self.fastSettings(breakerFailureThreshold: 1))
        await fixture.stub.updateFaults { $0.hang = true }
        let call = Task { await Self.failure { () async throws(UpstreamError) in try await fixture.client.participants(of: Self.id("chat-1")) } }
        #expect(await eventually(timeout: .seconds(5)) { await fixture.stub.hangingRequests == 1 })
        call.cancel()
        let error = await call.value
        #expect(error?.code == .timeout)
        #expect(error?.message.contains("cancelled") == true)
        #expect(await fixture.client.statistics.circuitState == .closed)
        await fixture.close()
    }

    @Test func aClosedPortIsAConnectionErrorAfterRetries() async throws {
        let closedPort = freeLoopbackPort()
        let fixture = try await Fixture(clientPort: closedPort)
        let error = await Self.failure { () async throws(UpstreamError) in try await fixture.client.participants(of: Self.id("chat-1")) }
        #expect(error?.code == .connection)
        let statistics = await fixture.client.statistics
        #expect(statistics.attempts == 3 && statistics.errors(.connection) == 1)
        await fixture.close()
    }

    // MARK: Circuit breaker

    @Test func theBreakerOpensStopsCallingAndClosesOnceUpstreamRecovers() async throws {
        let fixture = try await Fixture(settings: Self.fastSettings(
            maxAttempts: 1, breakerFailureThreshold: 3, breakerOpenDuration: .milliseconds(500)))
        await fixture.stub.updateFaults { $0.errorRate = 1 }
        for _ in 0..<3 {
            let error = await Self.failure { () async throws(UpstreamError) in try await fixture.client.participants(of: Self.id("chat-1")) }
            #expect(error?.code == .server)
        }
        #expect(await fixture.client.statistics.circuitState == .open)
        #expect(await fixture.stub.statistics.totalRequests == 3)

        for _ in 0..<5 {
            let error = await Self.failure { () async throws(UpstreamError) in try await fixture.client.batchGet([Self.id("chat-1")]) }
            #expect(error?.code == .circuitOpen)
        }
        #expect(await fixture.stub.statistics.totalRequests == 3, "calls reached upstream through an open breaker")
        #expect(await fixture.client.statistics.errors(.circuitOpen) == 5)
        #expect(await fixture.client.statistics.attempts == 3)

        await fixture.stub.clearFaults()
        let recovered = await eventually(timeout: .seconds(10)) {
            (try? await fixture.client.participants(of: Self.id("chat-1"))) != nil
        }
        #expect(recovered)
        #expect(await fixture.client.statistics.circuitState == .closed)
        // The faults were cleared before polling, so the first probe closed the breaker.
        #expect(await fixture.stub.statistics.totalRequests == 4)
        await fixture.close()
    }

    @Test func aFailedProbeOpensTheBreakerAgain() async throws {
        let fixture = try await Fixture(settings: Self.fastSettings(
            maxAttempts: 1, breakerFailureThreshold: 1, breakerOpenDuration: .milliseconds(200)))
        await fixture.stub.updateFaults { $0.errorRate = 1 }
        _ = await Self.failure { () async throws(UpstreamError) in try await fixture.client.participants(of: Self.id("chat-1")) }
        #expect(await fixture.client.statistics.circuitState == .open)
        let probed = await eventually(timeout: .seconds(10)) {
            let error = await Self.failure { () async throws(UpstreamError) in try await fixture.client.participants(of: Self.id("chat-1")) }
            return error?.code == .server
        }
        #expect(probed)
        #expect(await fixture.client.statistics.circuitState == .open)
        #expect(await fixture.stub.statistics.totalRequests == 2)
        await fixture.close()
    }

    // MARK: Partial answers

    @Test func partialBatchAnswersSurfaceTheMissingIDs() async throws {
        let fixture = try await Fixture()
        await fixture.stub.updateFaults { $0.partialRate = 1 }
        let requested = (1...10).map { Self.id("chat-\($0)") } + [Self.id("chat-500")]
        let response = try await fixture.client.batchGet(requested)
        let missing = response.missingIDs(from: requested)
        #expect(!missing.isEmpty)
        let answered = Set(response.chats.map(\.chatID.rawValue) + response.notFound)
        #expect(missing.allSatisfy { !answered.contains($0.rawValue) })
        #expect(missing.count + answered.count == requested.count)
        let statistics = await fixture.client.statistics
        #expect(statistics.partialAnswers == 1 && statistics.missingIDs == missing.count && statistics.successes == 1)
        await fixture.close()
    }
}
