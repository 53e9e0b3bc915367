import Actors
import Logging
import Prometheus
import Runtime
import ServiceLifecycle

/// The running parts of one chat-service process, built by ``buildServices(configuration:loop:metrics:logger:)``.
public struct ChatServiceApplication: Sendable {
    public let supervisor: RedisSupervisor
    public let healthMonitor: HealthMonitor
    public let frontend: HTTPFrontend
    /// In start order; shutdown runs in reverse.
    public let services: [any Service]
    public let configuration: ServiceConfiguration

    /// Runs every service until SIGTERM or SIGINT (or the group fails), draining within
    /// SHUTDOWN_TIMEOUT.
    public func run(logger: Logger) async throws {
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // Past the drain bound the group cancels what is left, so SIGTERM always ends the process.
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownTimeout
        groupConfiguration.maximumCancellationDuration = .seconds(2)
        try await ServiceGroup(configuration: groupConfiguration).run()
    }
}

/// Wires every actor of the service from its configuration. Main stays thin; tests call this.
public func buildServices(
    configuration: ServiceConfiguration,
    loop: EventLoop,
    metrics: PrometheusCollectorRegistry,
    logger: Logger
) -> ChatServiceApplication {
    let redis = configuration.redis
    let policy = SupervisorStateMachine.Policy(
        maxRetries: redis.maxRetries,
        backoff: Backoff(initial: redis.retryDelay, maximum: redis.maxRetryDelay),
        probeInterval: redis.healthCheckInterval)
    let supervisor = RedisSupervisor(
        endpoint: redis.endpoint,
        loop: loop,
        policy: policy,
        connectionOptions: RedisConnectionOptions(connectTimeout: redis.connectTimeout, commandTimeout: redis.commandTimeout),
        logger: logger.withLabel("redis"))
    let healthMonitor = HealthMonitor(
        supervisor: supervisor,
        loop: loop,
        interval: redis.healthCheckInterval,
        lateAfter: redis.commandTimeout,
        logger: logger.withLabel("health"))
    let http = configuration.http
    var limits = HTTPServerLimits()
    limits.maxBodySize = http.maxBodySize
    limits.readTimeout = http.requestTimeout
    let frontend = HTTPFrontend(
        loop: loop,
        settings: .init(host: http.host, port: http.port, limits: limits, drainTimeout: configuration.shutdownTimeout),
        supervisor: supervisor,
        routes: [],
        metricsText: { metrics.emitToBuffer() },
        logger: logger.withLabel("http"))
    return ChatServiceApplication(
        supervisor: supervisor,
        healthMonitor: healthMonitor,
        frontend: frontend,
        services: [supervisor, healthMonitor, frontend],
        configuration: configuration)
}

extension Logger {
    /// A copy with the same handler settings and a `component` metadata key.
    func withLabel(_ component: String) -> Logger {
        var copy = self
        copy[metadataKey: "component"] = "\(component)"
        return copy
    }
}
