import ChatService
import Foundation
import GRPCCore
import GRPCFrontend
import ServiceLifecycle
import StubUpstream
import SwiftProtobuf
import TestSupport
import Testing

/// `grpc.health.v1.Health` over loopback, graceful shutdown with the rest of the service group,
/// a port in use, and GRPC_ENABLED.
@Suite("gRPC health and lifecycle", .serialized, .timeLimit(.minutes(2)))
struct HealthGRPCTests {
    @Test func checkListAndWatchReportTheServerAndTheParticipantsService() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let health = Grpc_Health_V1_Health.Client(wrapping: client)
            #expect(try await health.check(.with { $0.service = "" }, options: GRPCApp.bounded).status == .serving)
            // The entry follows the supervisor's state changes through a feed task of the server:
            // it turns SERVING shortly after Redis is ready, not necessarily before start returns.
            #expect(
                await eventually(timeout: .seconds(10)) {
                    let reply = try? await health.check(
                        .with { $0.service = GRPCApp.participantsHealth }, options: GRPCApp.bounded)
                    return reply?.status == .serving
                })
            #expect(
                await GRPCApp.failure {
                    _ = try await health.check(.with { $0.service = "no.such.Service" }, options: GRPCApp.bounded)
                } == .notFound)
            let list = try await health.list(Grpc_Health_V1_HealthListRequest(), options: GRPCApp.bounded)
            #expect(list.statuses[""]?.status == .serving)
            #expect(list.statuses[GRPCApp.participantsHealth]?.status == .serving)
            #expect(list.statuses[ChatRPCService.healthName]?.status == .serving)
            #expect(list.statuses.count == 3)

            // An unknown name is watched too: SERVICE_UNKNOWN, and the stream stays open.
            let (unknown, unknownTask) = WatchLog.watch("no.such.Service", on: client)
            #expect(await eventually(timeout: .seconds(10)) { unknown.received == [.serviceUnknown] })
            #expect(unknown.end == nil)
            unknownTask.cancel()
            await unknownTask.value
        }
        // Health needs no token, and the API services do not count against it.
        #expect(await app.stub.statistics.totalRequests == 0)
        await app.close()
    }

    @Test func gracefulShutdownFinishesCallsInFlightEndsWatchesAndStopsTheListener() async throws {
        let app = try await GRPCApp.start()
        try await app.withClient { client in
            let (watch, watchTask) = WatchLog.watch("", on: client)
            #expect(await eventually(timeout: .seconds(10)) { watch.received == [.serving] })
            // A cold read that waits on a slow upstream is in flight when shutdown begins.
            await app.stub.updateFaults { $0.latency = .milliseconds(800) }
            let participants = Chat_V1_ParticipantsService.Client(wrapping: client)
            let slowRead = Task {
                try await participants.getParticipants(
                    .with { $0.chatID = "chat-7" }, metadata: GRPCApp.user, options: GRPCApp.bounded)
            }
            #expect(await eventually(timeout: .seconds(10)) { await app.stub.statistics.totalRequests == 1 })
            await app.group.triggerGracefulShutdown()

            // The watcher hears NOT_SERVING, then its stream ends, so the drain is not held up.
            #expect(await eventually(timeout: .seconds(10)) { watch.end != nil })
            #expect(watch.received == [.serving, .notServing])
            await watchTask.value
            // The call in flight is answered (within the drain bound, 4/5 of SHUTDOWN_TIMEOUT).
            let read = try await slowRead.value
            #expect(read.source == .upstream)
            #expect(read.participants.count == 4)
            // The whole group stops within SHUTDOWN_TIMEOUT (3 s), gRPC included.
            let stopped = Flag()
            let groupTask = app.groupTask
            let observer = Task {
                await groupTask.value
                stopped.set()
            }
            #expect(await eventually(timeout: .seconds(10)) { stopped.isSet })
            observer.cancel()
        }
        // A new connection is refused once the listener is closed.
        let port = app.grpcPort
        let refused = await GRPCApp.failure {
            var options = CallOptions.defaults
            options.timeout = .seconds(2)
            try await app.withClient { client in
                _ = try await Grpc_Health_V1_Health.Client(wrapping: client).check(
                    .with { $0.service = "" }, options: options)
            }
        }
        #expect(refused == .unavailable || refused == .deadlineExceeded, "port \(port): \(String(describing: refused))")
        await app.close()
    }

    @Test func aPortInUseFailsTheServiceGroup() async throws {
        let taken = SilentListener()
        let environment = [
            "REDIS_URL": "redis://127.0.0.1:\(freeLoopbackPort())/0", "PARTICIPANTS_INTEGRATION_DISABLED": "true",
            "GRPC_PORT": "\(taken.port)", "SHUTDOWN_TIMEOUT": "2s",
        ]
        do {
            let service = try await InProcessService(
                backends: nil, environment: environment, logger: GRPCApp.logger, readiness: .started)
            await service.close()
            Issue.record("the service started with its gRPC port taken")
        } catch let error as InProcessServiceError {
            #expect(error.groupFailure != nil, "the service group did not fail: \(error)")
        }
    }

    @Test func grpcDisabledBuildsNoServer() async throws {
        let app = try await GRPCApp.start(environment: ["GRPC_ENABLED": "false"])
        #expect(app.application.grpc == nil)
        #expect(await httpGet(app.httpBase + "/health", timeout: .seconds(10))?.status == 200)
        await app.close()
    }
}
