public import Actors
public import ChatService
import Foundation
import GRPCFrontend
public import Logging
import Prometheus
public import ChatRuntime
public import ServiceLifecycle
public import StubUpstream

/// One whole chat-service in this process: ``buildServices`` on an event loop of its own, its
/// `ServiceGroup` running, HTTP and gRPC on free loopback ports, a chat store file of its own.
///
/// The in-process twin of ``ServiceProcess``. Tests that need the actors themselves (a
/// supervisor's state, an injected ``ManualSyncClock``, tuned coordination, triggering the
/// group's shutdown) run the service here; tests of the process (signals, exit codes, the
/// environment as the binary reads it, SIGKILL) run the binary as a ``ServiceProcess``.
///
/// Its Redis and upstream are ``TestBackends``: its own (``start(chats:participantsPerChat:redisConfig:environment:clock:tuneCoordination:logger:readiness:)``,
/// stopped by ``close()``), shared with other instances (``init(backends:environment:clock:tuneCoordination:logger:readiness:)``),
/// or none when the caller points the environment elsewhere (Sentinel).
public final class InProcessService: Sendable {
    public static let jwtSecret = TestServiceEnvironment.jwtSecret
    public static let adminToken = TestServiceEnvironment.adminToken
    /// A valid user token (subject `alice`) for ``jwtSecret``.
    public static let userToken = mintUserToken(subject: "alice", secret: jwtSecret, validFor: .seconds(3600))
    public static let logger = Logger(label: "test.service")

    /// What the fixture waits for before it returns; a wait that times out (10 s) throws.
    public enum Readiness: Sendable {
        /// Nothing: the group runs, the HTTP port is bound.
        case started
        /// The Redis supervisor is ready.
        case redis
        /// The Redis supervisor is ready and the invalidation feed has positioned (it drops L1
        /// when it does, so a test that reads after it sees its own reads cached).
        case redisAndInvalidationFeed
    }

    public let loop: EventLoop
    public let application: ChatServiceApplication
    public let group: ServiceGroup
    /// The group's run, which ends when the service has stopped.
    public let groupTask: Task<Void, Never>
    /// The HTTP port on 127.0.0.1.
    public let httpPort: Int
    /// `http://127.0.0.1:<httpPort>`.
    public var httpBase: String { "http://127.0.0.1:\(httpPort)" }
    /// The gRPC port; nil with GRPC_ENABLED=false.
    public let grpcPort: Int?
    /// The sync clock the instance runs on, when the caller injected one; the system's otherwise.
    public let clock: ManualSyncClock?
    /// The Redis and upstream this instance was given, if any.
    public let backends: TestBackends?
    private let ownsBackends: Bool
    /// How the group's run ended: nil while it runs, an error when it failed.
    private let outcome = GroupOutcome()
    /// The chat store file this instance made because the caller named none; removed by close.
    private let ownedSQLitePath: String?

    /// A service with backends of its own (`chats` chats in the stub), stopped by ``close()``.
    public static func start(
        chats: Int = 30, participantsPerChat: Int = 4, redisConfig: [String] = [], environment: [String: String] = [:],
        clock: ManualSyncClock? = nil,
        tuneCoordination: @escaping @Sendable (inout CoordinationSettings) -> Void = { _ in },
        logger: Logger = InProcessService.logger, readiness: Readiness = .redisAndInvalidationFeed
    ) async throws -> InProcessService {
        let backends = try await TestBackends.start(
            chats: chats, participantsPerChat: participantsPerChat, redisConfig: redisConfig, logger: logger)
        do {
            return try await InProcessService(
                backends: backends, owningThem: true, environment: environment, clock: clock,
                tuneCoordination: tuneCoordination, logger: logger, readiness: readiness)
        } catch {
            await backends.close()
            throw error
        }
    }

    /// A service on `backends` (nil: the caller's environment names Redis and upstream), which
    /// stay running after ``close()``.
    public convenience init(
        backends: TestBackends?, environment: [String: String] = [:], clock: ManualSyncClock? = nil,
        tuneCoordination: @escaping @Sendable (inout CoordinationSettings) -> Void = { _ in },
        logger: Logger = InProcessService.logger, readiness: Readiness = .redisAndInvalidationFeed
    ) async throws {
        try await self.init(
            backends: backends, owningThem: false, environment: environment, clock: clock,
            tuneCoordination: tuneCoordination, logger: logger, readiness: readiness)
    }

    private init(
        backends: TestBackends?, owningThem: Bool, environment extra: [String: String], clock: ManualSyncClock?,
        tuneCoordination: @escaping @Sendable (inout CoordinationSettings) -> Void, logger: Logger, readiness: Readiness
    ) async throws {
        var environment = TestServiceEnvironment.defaults.merging(backends?.environment ?? [:]) { $1 }
        // A chat store path the caller names is the caller's to remove (a restart test reopens it).
        if extra["CHAT_SQLITE_PATH"] == nil {
            let path = temporarySQLitePath()
            environment["CHAT_SQLITE_PATH"] = path
            ownedSQLitePath = path
        } else {
            ownedSQLitePath = nil
        }
        environment.merge(extra) { $1 }
        self.backends = backends
        ownsBackends = owningThem
        self.clock = clock
        let loop = EventLoop(name: "service-\(environment["INSTANCE_ID"] ?? "in-process")")
        self.loop = loop
        do {
            let configuration = try ServiceConfiguration(environment: environment)
            application = try await buildServices(
                configuration: configuration, loop: loop, metrics: PrometheusCollectorRegistry(),
                syncClock: clock ?? SystemSyncClock(), tuneCoordination: tuneCoordination, logger: logger)
        } catch {
            loop.stop()
            if let ownedSQLitePath { removeTemporarySQLite(ownedSQLitePath) }
            throw error
        }
        let group = application.makeServiceGroup(signals: [], logger: logger)
        self.group = group
        let outcome = outcome
        groupTask = Task {
            do {
                try await group.run()
                outcome.value.withLock { $0 = .success(()) }
            } catch {
                outcome.value.withLock { $0 = .failure(error) }
            }
        }
        // Bound ports, or the group's failure to bind them (the caller sees the error).
        let ports: (http: Int, grpc: Int?)
        do {
            ports = (try await application.frontend.boundPort(), try await application.grpc?.boundPort())
        } catch {
            (httpPort, grpcPort) = (0, nil)
            await close()
            throw InProcessServiceError("the service did not bind its ports: \(error)", groupFailure: failure)
        }
        (httpPort, grpcPort) = ports
        do {
            try await waitUntil(readiness)
        } catch {
            await close()
            throw error
        }
    }

    private func waitUntil(_ readiness: Readiness) async throws {
        if readiness == .started { return }
        let supervisor = application.supervisor
        guard await eventually(timeout: .seconds(10), { await supervisor.state == .ready }) else {
            throw InProcessServiceError("Redis was not ready within 10 s (state \(await supervisor.state))")
        }
        if readiness == .redisAndInvalidationFeed, let feed = application.participants?.invalidationFeed {
            guard await eventually(timeout: .seconds(10), { await feed.position != nil }) else {
                throw InProcessServiceError("the invalidation feed did not position within 10 s")
            }
        }
    }

    /// INSTANCE_ID as the service read it.
    public var instanceID: String { application.configuration.instanceID }

    /// The group has stopped (shut down, cancelled or failed).
    public var hasStopped: Bool { outcome.value.withLock { $0 != nil } }

    /// The error the group stopped with; nil while it runs or when it stopped cleanly.
    public var failure: (any Error)? {
        outcome.value.withLock { outcome in
            if case .failure(let error) = outcome { return error }
            return nil
        }
    }

    /// Graceful shutdown, as on SIGTERM: waits (up to SHUTDOWN_TIMEOUT and the group's
    /// cancellation bound, plus slack) for every service to stop, then stops the loop and,
    /// when this instance owns them, the backends.
    public func close() async {
        await group.triggerGracefulShutdown()
        await stopped()
    }

    /// Dies: every task cancelled, nothing drained or released (a leader's lock then expires
    /// after its TTL; the batches it held stay pending), the loop stopped.
    public func kill() async {
        groupTask.cancel()
        await stopped()
    }

    private func stopped() async {
        let ended = await eventually(timeout: .seconds(15)) { self.hasStopped }
        if !ended { Self.logger.error("the service group did not stop within 15 s; stopping its loop anyway") }
        loop.stop()
        if let ownedSQLitePath { removeTemporarySQLite(ownedSQLitePath) }
        if ownsBackends, let backends { await backends.close() }
    }

    // MARK: Conveniences for tests

    /// The Redis of ``backends``; the fixture was started without backends if this traps.
    public var redis: RedisServer {
        guard let backends else { preconditionFailure("this InProcessService has no TestBackends") }
        return backends.redis
    }

    /// The stub upstream of ``backends``; the fixture was started without backends if this traps.
    public var stub: StubUpstream {
        guard let backends else { preconditionFailure("this InProcessService has no TestBackends") }
        return backends.stub
    }
}

/// How a service group's run ended, shared with the task that runs it.
private final class GroupOutcome: Sendable {
    let value = AnnotatedMutex<Result<Void, any Error>?>(nil)
}

/// A whole-service fixture that could not start or become ready.
public struct InProcessServiceError: Error, CustomStringConvertible {
    public let description: String
    /// What the service group failed with, when it did (a port in use, say).
    public let groupFailure: (any Error)?

    public init(_ description: String, groupFailure: (any Error)? = nil) {
        self.description = description
        self.groupFailure = groupFailure
    }
}
