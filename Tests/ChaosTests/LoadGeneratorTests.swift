import Foundation
import Logging
import ChatRuntime
import Synchronization
import Testing
import TestSupport

/// The load generator against a scripted HTTP server: it counts reads by hot/cold, status class
/// and source, probes /health, and computes recovery from what it saw. Fast; runs in `make test`.
@Suite("LoadGenerator", .serialized, .timeLimit(.minutes(1)))
struct LoadGeneratorTests {
    /// Whether /health says ok, and the status reads of cold chats get.
    final class Script: Sendable {
        let healthy = Atomic<Bool>(true)
        let coldStatus = Atomic<Int>(200)
    }

    static func server(loop: EventLoop, script: Script) async throws -> (HTTPServer, Int) {
        var router = HTTPRouter()
        router.add(.GET, "/health") { _ in
            .json(bytes: Array((script.healthy.load(ordering: .relaxed) ? #"{"status":"ok"}"# : #"{"status":"degraded"}"#).utf8))
        }
        router.add(.GET, "/v1/chats/{chat_id}/participants") { request in
            guard request.headers["authorization"] == "Bearer token" else {
                return .error(status: 401, code: "unauthorized", message: "no")
            }
            if request.pathParameters["chat_id"]?.hasPrefix("hot") == true {
                return .json(bytes: Array(#"{"stale":false,"source":"memory"}"#.utf8))
            }
            let status = script.coldStatus.load(ordering: .relaxed)
            return status == 200
                ? .json(bytes: Array(#"{"stale":false,"source":"upstream"}"#.utf8))
                : .error(status: status, code: "x", message: "scripted")
        }
        let server = HTTPServer(loop: loop, router: router, logger: Logger(label: "test.load"))
        let port = try await server.start(host: "127.0.0.1", port: 0)
        return (server, port)
    }

    @Test func countsReadsByTemperatureClassAndSourceAndMeasuresRecovery() async throws {
        let loop = EventLoop(name: "load-generator-test")
        let script = Script()
        let (server, port) = try await Self.server(loop: loop, script: script)
        var settings = LoadGenerator.Settings(port: port, token: "token", hotChats: ["hot-1", "hot-2"], coldChats: ["cold-1", "cold-2", "cold-3"])
        settings.workers = 2
        settings.requestsPerSecondPerWorker = 50
        settings.coldShare = 0.5
        let load = LoadGenerator(settings: settings)
        load.start()
        // Healthy until both classes and the prober have been counted; then the fault until the
        // load has met it; then healthy again until it has seen the recovery.
        try #require(await eventually {
            let figures = load.figures()
            return figures.hot().requests > 10 && figures.cold().success > 5 && !figures.probes.isEmpty
        })
        script.healthy.store(false, ordering: .relaxed)
        script.coldStatus.store(503, ordering: .relaxed)
        try #require(await eventually {
            let figures = load.figures()
            return figures.cold().serverErrors > 0 && figures.probes.contains { $0.healthStatus == "degraded" }
        })
        let faultEnded = ContinuousClock.now
        script.healthy.store(true, ordering: .relaxed)
        script.coldStatus.store(200, ordering: .relaxed)
        try #require(await eventually {
            let figures = load.figures()
            return figures.healthRecovery(after: faultEnded) != nil && figures.upstreamRecovery(after: faultEnded) != nil
        })
        let figures = await load.stop()

        let hot = figures.hot()
        let cold = figures.cold()
        #expect(hot.requests > 10 && hot.success == hot.requests && hot.fromMemory == hot.requests)
        #expect(cold.requests > 10 && cold.serverErrors > 0 && cold.success > 0)
        #expect(cold.fromUpstream == cold.success)
        #expect(hot.failures == 0 && cold.failures == 0)
        #expect(figures.failedProbes.isEmpty)
        #expect(figures.probes.contains { $0.healthStatus == "degraded" })
        let recovery = try #require(figures.healthRecovery(after: faultEnded))
        #expect(recovery < .seconds(1))
        #expect(figures.upstreamRecovery(after: faultEnded) != nil)
        // Nothing is counted after stop: every thread has ended, and what stop returned is all.
        #expect(load.hasStopped)
        #expect(load.figures().samples.count == figures.samples.count)
        await server.stop()
        loop.stop()
    }

    @Test func aServerThatIsGoneCountsAsNoAnswerAndFailedProbes() async throws {
        var settings = LoadGenerator.Settings(port: try ScriptedTCPServer.unusedPort(), token: "t", hotChats: ["hot-1"], coldChats: [])
        settings.workers = 1
        settings.requestsPerSecondPerWorker = 20
        let load = LoadGenerator(settings: settings)
        load.start()
        try #require(await eventually {
            let figures = load.figures()
            return figures.hot().requests > 0 && !figures.probes.isEmpty
        })
        let figures = await load.stop()
        #expect(figures.hot().requests > 0)
        #expect(figures.hot().failures == figures.hot().requests)
        #expect(!figures.probes.isEmpty && figures.failedProbes.count == figures.probes.count)
        #expect(figures.healthRecovery(after: .now - .seconds(10)) == nil)
    }
}
