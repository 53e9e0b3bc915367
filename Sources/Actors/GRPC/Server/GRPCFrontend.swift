import ChatRuntime
public import GRPCCore
import GRPCNIOTransportHTTP2Posix
public import Logging
public import ServiceLifecycle

/// The gRPC server (grpc-swift 2 over NIO's HTTP/2, plaintext) as a swift-service-lifecycle
/// `Service`: serves the registered services until graceful shutdown, then reports NOT_SERVING,
/// ends health watches, stops accepting calls and lets the calls in flight finish within
/// ``GRPCSettings/drainTimeout``.
///
/// NIO runs its own event loop threads (the process-wide singleton group); handlers hop onto the
/// domain actors, which stay on the libevent loop.
public final class GRPCFrontend: Service, Sendable, CustomStringConvertible {
    public let settings: GRPCSettings
    /// The standard health service; ``run()`` marks the whole server SERVING once it listens.
    public let health: HealthService
    private let services: [any RegistrableRPCService]
    private let healthFeeds: [HealthFeed]
    private let logger: Logger
    private let bound = BoundPortPromise()

    /// - Parameters:
    ///   - services: the API services; ``health`` is served besides them.
    ///   - healthFeeds: what keeps the API services' health entries up to date while serving.
    public init(
        settings: GRPCSettings, services: [any RegistrableRPCService], health: HealthService,
        healthFeeds: [HealthFeed] = [], logger: Logger
    ) {
        self.settings = settings
        self.services = services
        self.health = health
        self.healthFeeds = healthFeeds
        self.logger = logger
    }

    public var description: String { "GRPCFrontend(\(settings.host):\(settings.port))" }

    /// The port actually bound (useful with port 0); waits until the listener is up, throws if it
    /// could not bind.
    public func boundPort() async throws -> Int {
        try await bound.value()
    }

    private enum Milestone: Sendable {
        case stopped
        case shutdownRequested
        case drainTimedOut
        case feedEnded
    }

    public func run() async throws {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = settings.maxRequestBytes
        let transport = HTTP2ServerTransport.Posix(
            address: Self.socketAddress(host: settings.host, port: settings.port),
            transportSecurity: .plaintext, config: config)
        let server = GRPCServer(transport: transport, services: services + [health])
        let settings = settings
        let logger = logger
        let health = health
        let bound = bound

        try await withThrowingTaskGroup(of: Milestone.self) { group in
            group.addTask {
                try await server.serve()
                return .stopped
            }
            group.addTask {
                do {
                    let address = try await transport.listeningAddress
                    guard let port = address.ipv4?.port ?? address.ipv6?.port else {
                        throw RuntimeError(
                            code: .transportError, message: "the gRPC listener has no IP address: \(address)")
                    }
                    bound.resolve(.success(port))
                    health.markServing()
                    logger.info("listening", metadata: ["grpc.host": "\(settings.host)", "grpc.port": "\(port)"])
                } catch {
                    bound.resolve(.failure(error))
                    logger.critical(
                        "cannot listen",
                        metadata: [
                            "grpc.host": "\(settings.host)", "grpc.port": "\(settings.port)", "error": "\(error)",
                        ])
                }
                // Child tasks inherit the graceful-shutdown manager of the service group.
                try? await gracefulShutdown()
                return .shutdownRequested
            }
            for feed in healthFeeds {
                group.addTask {
                    await feed.follow(health)
                    return .feedEnded
                }
            }

            var draining = false
            while let milestone = try await group.next() {
                switch milestone {
                case .stopped:
                    // Drained, or stopped on its own before shutdown (which the group reports).
                    group.cancelAll()
                    if !draining {
                        bound.resolve(
                            .failure(RuntimeError(code: .serverIsStopped, message: "the gRPC server stopped")))
                    }
                    return
                case .shutdownRequested:
                    draining = true
                    logger.info("draining gRPC calls")
                    // NOT_SERVING first, so health watchers hear it before their streams end.
                    health.shutDown()
                    server.beginGracefulShutdown()
                    group.addTask {
                        try? await Task.sleep(for: settings.drainTimeout)
                        return .drainTimedOut
                    }
                case .drainTimedOut:
                    logger.warning(
                        "gRPC calls still running past the drain bound; cancelling them",
                        metadata: [
                            "grpc.drain_timeout": "\(settings.drainTimeout)"
                        ])
                    group.cancelAll()
                case .feedEnded:
                    break
                }
            }
        }
    }

    /// IPv6 for a literal with a colon, IPv4 otherwise (GRPC_HOST is checked to be an IP literal).
    static func socketAddress(host: String, port: Int) -> GRPCNIOTransportCore.SocketAddress {
        host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
    }
}

/// The bound port, for callers that ask before the listener is up.
private final class BoundPortPromise: Sendable {
    private struct State {
        var result: Result<Int, any Error>?
        var waiters: [CheckedContinuation<Int, any Error>] = []
    }

    private let state = AnnotatedMutex(State())

    func value() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let known = state.withLock { state -> Result<Int, any Error>? in
                if let result = state.result { return result }
                state.waiters.append(continuation)
                return nil
            }
            if let known { continuation.resume(with: known) }
        }
    }

    /// The first result wins; later ones are ignored.
    func resolve(_ result: Result<Int, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<Int, any Error>] in
            guard state.result == nil else { return [] }
            state.result = result
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }
}
