import Actors
import ChatRuntime
import ChatService
import Foundation
import GRPCCore
import GRPCFrontend
import GRPCNIOTransportHTTP2Posix
import Logging
import StubUpstream
import Testing
import TestSupport
import SwiftProtobuf

/// The gRPC tests' view of the whole service: ``InProcessService`` (the one whole-service
/// fixture) with the gRPC API on a free loopback port, called through grpc-swift's own client,
/// and the helpers the calls share.
enum GRPCApp {
    static let logger = Logger(label: "test.grpc")
    static let jwtSecret = InProcessService.jwtSecret
    static let adminToken = InProcessService.adminToken
    static let userToken = InProcessService.userToken
    static let participantsHealth = ParticipantsRPCService.healthName

    /// The whole service with backends of its own, the background sync off, ready: Redis ready,
    /// the invalidation feed positioned, and the participants health entry SERVING.
    static func start(chats: Int = 30, environment extra: [String: String] = [:]) async throws -> InProcessService {
        let app = try await InProcessService.start(
            chats: chats,
            environment: ["PARTICIPANTS_BATCH_SIZE": "7", "PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "false"].merging(extra) { $1 },
            logger: logger)
        if let grpc = app.application.grpc, app.application.participants != nil {
            guard await eventually(timeout: .seconds(10), { grpc.health.status(of: participantsHealth) == .serving }) else {
                await app.close()
                throw InProcessServiceError("the participants health entry was not SERVING within 10 s")
            }
        }
        return app
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

extension InProcessService {
    /// A gRPC client connected to the service for the duration of `body`.
    func withClient<Result: Sendable>(
        _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        let port = try #require(grpcPort, "the service runs without gRPC")
        return try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext),
            handleClient: body)
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
