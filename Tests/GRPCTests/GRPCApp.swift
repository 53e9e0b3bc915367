import Actors
import ChatService
import Foundation
import GRPCCore
import GRPCFrontend
import GRPCNIOTransportHTTP2Posix
import Logging
import Prometheus
import ChatRuntime
import ServiceLifecycle
import Testing
import TestSupport
import SwiftProtobuf

/// The whole service in-process (``buildServices``) against a real redis-server and the stub
/// upstream, with gRPC on a free loopback port, called through grpc-swift's own client.
final class GRPCApp: Sendable {
    static let logger = Logger(label: "test.grpc")
    static let jwtSecret = "test-jwt-secret"
    static let adminToken = "test-admin-token"
    static let userToken = mintUserToken(subject: "alice", secret: jwtSecret, validFor: .seconds(3600))
    static let participantsHealth = ParticipantsRPCService.healthName

    let loop: EventLoop
    let redis: RedisServer
    let stub: StubUpstream
    let application: ChatServiceApplication
    let group: ServiceGroup
    let groupTask: Task<Void, any Error>
    let grpcPort: Int
    let httpBase: String
    let sqlitePath = temporarySQLitePath()

    /// - Parameter waitForRedis: wait until the supervisor is ready (and the participants health
    ///   entry SERVING) before returning.
    init(chats: Int = 30, environment extra: [String: String] = [:], waitForRedis: Bool = true) async throws {
        loop = EventLoop(name: "grpc-tests")
        redis = try await RedisServer.start()
        stub = StubUpstream(
            settings: .init(chats: chats, participantsPerChat: 4, maxHang: .seconds(30)), loop: loop, logger: Self.logger)
        let stubPort = try await stub.start(port: 0)
        var environment = [
            "REDIS_URL": redis.url,
            "REDIS_RETRY_DELAY": "50ms", "REDIS_MAX_RETRY_DELAY": "100ms", "REDIS_MAX_RETRIES": "2",
            "REDIS_HEALTH_CHECK_INTERVAL": "200ms", "REDIS_CONNECT_TIMEOUT": "500ms", "REDIS_COMMAND_TIMEOUT": "500ms",
            "PARTICIPANTS_API_URL": "http://127.0.0.1:\(stubPort)",
            "PARTICIPANTS_MAX_API_TIMEOUT": "3s",
            "PARTICIPANTS_BATCH_SIZE": "7",
            "PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "false",
            "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0",
            "GRPC_HOST": "127.0.0.1", "GRPC_PORT": "0",
            "JWT_SECRET": Self.jwtSecret, "ADMIN_TOKEN": Self.adminToken,
            "SHUTDOWN_TIMEOUT": "3s", "CHAT_SQLITE_PATH": sqlitePath,
        ]
        environment.merge(extra) { $1 }
        let configuration = try ServiceConfiguration(environment: environment)
        application = try await buildServices(
            configuration: configuration, loop: loop, metrics: PrometheusCollectorRegistry(), logger: Self.logger)
        group = application.makeServiceGroup(signals: [], logger: Self.logger)
        let group = group
        groupTask = Task { try await group.run() }
        let grpc = application.grpc
        grpcPort = try await grpc?.boundPort() ?? 0
        httpBase = "http://127.0.0.1:\(try await application.frontend.boundPort())"
        if waitForRedis {
            let supervisor = application.supervisor
            _ = await eventually(timeout: .seconds(10)) { await supervisor.state == .ready }
            if let grpc, application.participants != nil {
                _ = await eventually(timeout: .seconds(10)) { grpc.health.status(of: Self.participantsHealth) == .serving }
            }
            if let feed = application.participants?.invalidationFeed {
                _ = await eventually(timeout: .seconds(10)) { await feed.position != nil }
            }
        }
    }

    func close() async {
        await group.triggerGracefulShutdown()
        _ = try? await groupTask.value
        await stub.shutdown()
        redis.cleanup()
        loop.stop()
        removeTemporarySQLite(sqlitePath)
    }

    /// A client connected to the service for the duration of `body`.
    func withClient<Result: Sendable>(
        _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: grpcPort), transportSecurity: .plaintext),
            handleClient: body)
    }

    // MARK: Call helpers

    /// Every call in the tests is bounded.
    static let bounded: CallOptions = {
        var options = CallOptions.defaults
        options.timeout = .seconds(10)
        return options
    }()

    /// `authorization: Bearer <token>`, or nothing.
    static func bearer(_ token: String?) -> Metadata {
        var metadata = Metadata()
        if let token { metadata.addString("Bearer \(token)", forKey: "authorization") }
        return metadata
    }

    static let user = bearer(userToken)

    /// A user token for `subject`.
    static func user(_ subject: String) -> Metadata {
        bearer(mintUserToken(subject: subject, secret: jwtSecret, validFor: .seconds(3600)))
    }
    static let admin = bearer(adminToken)

    /// The status code a call failed with; nil when it succeeded.
    static func failure(_ call: () async throws -> Void) async -> RPCError.Code? {
        do {
            try await call()
            return nil
        } catch let error as RPCError {
            return error.code
        } catch {
            Issue.record("not an RPCError: \(error)")
            return .unknown
        }
    }
}

/// What a health Watch stream delivered so far, filled by a background task.
final class WatchLog: Sendable {
    private let statuses = AnnotatedMutex<[Grpc_Health_V1_HealthCheckResponse.ServingStatus]>([])
    private let ended = AnnotatedMutex<Result<Void, RPCError>?>(nil)

    var received: [Grpc_Health_V1_HealthCheckResponse.ServingStatus] { statuses.withLock { $0 } }
    var end: Result<Void, RPCError>? { ended.withLock { $0 } }

    /// Watches `service` until the stream ends, the task is cancelled or `timeout` passes.
    static func watch(
        _ service: String, on client: GRPCClient<HTTP2ClientTransport.Posix>, timeout: Duration = .seconds(60)
    ) -> (WatchLog, Task<Void, Never>) {
        let log = WatchLog()
        let health = Grpc_Health_V1_Health.Client(wrapping: client)
        var options = CallOptions.defaults
        options.timeout = timeout
        let task = Task {
            do {
                try await health.watch(.with { $0.service = service }, options: options) { response in
                    for try await message in response.messages {
                        log.statuses.withLock { $0.append(message.status) }
                    }
                }
                log.ended.withLock { $0 = .success(()) }
            } catch let error as RPCError {
                log.ended.withLock { $0 = .failure(error) }
            } catch {
                log.ended.withLock { $0 = .failure(RPCError(code: .unknown, message: "\(error)")) }
            }
        }
        return (log, task)
    }
}

/// A flag one task sets and another polls.
final class Flag: Sendable {
    private let value = AnnotatedMutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
