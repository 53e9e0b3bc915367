public import Actors
public import ChatRuntime
import Foundation
public import GRPCFrontend
public import Logging
public import Prometheus
public import ServiceLifecycle
public import UnixSignals

/// The running parts of one chat-service process, built by ``buildServices(configuration:loop:metrics:logger:)``.
public struct ChatServiceApplication: Sendable {
    public let supervisor: RedisSupervisor
    public let healthMonitor: HealthMonitor
    public let frontend: HTTPFrontend
    /// The gRPC API; nil when GRPC_ENABLED is false.
    public let grpc: GRPCFrontend?
    /// The participants layer; nil when PARTICIPANTS_INTEGRATION_DISABLED is on.
    public let participants: ParticipantsComponents?
    /// The chat API's core and store.
    public let chat: ChatComponents
    /// In start order; shutdown runs in reverse.
    public let services: [any Service]
    public let configuration: ServiceConfiguration

    /// Runs every service until SIGTERM or SIGINT (or the group fails), draining within
    /// SHUTDOWN_TIMEOUT.
    public func run(logger: Logger) async throws {
        try await makeServiceGroup(signals: [.sigterm, .sigint], logger: logger).run()
    }

    /// The service group, for callers that trigger shutdown themselves (tests).
    public func makeServiceGroup(signals: [UnixSignal], logger: Logger) -> ServiceGroup {
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: signals,
            logger: logger)
        // Past the drain bound the group cancels what is left, so SIGTERM always ends the process.
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownTimeout
        groupConfiguration.maximumCancellationDuration = .seconds(2)
        return ServiceGroup(configuration: groupConfiguration)
    }
}

/// The participants layer's actors.
public struct ParticipantsComponents: Sendable {
    public let cache: ParticipantsCache
    public let upstream: UpstreamClient
    public let coordinator: RefreshCoordinator
    public let reader: ParticipantsReader
    public let scheduler: Scheduler
    /// The sync pipeline's other services (docs/COORDINATION.md): the leader election, the
    /// batcher and this instance's reader of the shared batch stream.
    public let elector: LeaderElector
    public let batcher: Batcher
    public let consumer: BatchStreamConsumer
    /// Applies other instances' writes to L1; nil when L1 is off (PARTICIPANTS_L1_SIZE=0).
    public let invalidationFeed: InvalidationFeed?
}

/// Wires every actor of the service from its configuration. Main stays thin; tests call this.
///
/// - Parameter tuneCoordination: adjusts the coordination settings derived from the
///   configuration (tests shorten the stream and the poll intervals).
public func buildServices(
    configuration: ServiceConfiguration,
    loop: EventLoop,
    metrics: PrometheusCollectorRegistry,
    syncClock: any SyncClock = SystemSyncClock(),
    tuneCoordination: (inout CoordinationSettings) -> Void = { _ in },
    logger: Logger
) async throws -> ChatServiceApplication {
    let redis = configuration.redis
    let policy = SupervisorStateMachine.Policy(
        maxRetries: redis.maxRetries,
        backoff: Backoff(initial: redis.retryDelay, maximum: redis.maxRetryDelay),
        probeInterval: redis.healthCheckInterval)
    let connectionOptions = RedisConnectionOptions(
        connectTimeout: redis.connectTimeout, commandTimeout: redis.commandTimeout)
    // With REDIS_CLUSTER_NODES the supervisor is the front of a cluster, which runs as a
    // service of its own and supervises one connection per primary.
    let cluster =
        redis.clusterNodes.isEmpty
        ? nil
        : RedisCluster(
            seeds: redis.clusterNodes, credentials: redis.endpoint, loop: loop,
            policy: ClusterStateMachine.Policy(retry: policy, refreshInterval: redis.clusterRefreshInterval),
            connectionOptions: connectionOptions, logger: logger.withLabel("redis"))
    let supervisor =
        cluster.map {
            RedisSupervisor(
                cluster: $0, loop: loop, connectionOptions: connectionOptions, logger: logger.withLabel("redis"))
        }
        ?? RedisSupervisor(
            endpoint: redis.endpoint, loop: loop, policy: policy, connectionOptions: connectionOptions,
            sentinel: redis.sentinel, logger: logger.withLabel("redis"))
    let healthMonitor = HealthMonitor(
        supervisor: supervisor,
        loop: loop,
        interval: redis.healthCheckInterval,
        lateAfter: redis.commandTimeout,
        logger: logger.withLabel("health"))

    // One verifier for HTTP and gRPC, and one authenticator, so its cache of verified tokens
    // serves the participants and chat routes.
    let tokens = configuration.userTokens
    let jwks = try tokens.jwksURL.map { url throws(HTTPClientError) in
        try JWKSProvider(url: url, loop: loop, logger: logger.withLabel("jwks"))
    }
    let verifier = await TokenVerifier(
        secret: tokens.secret, provider: jwks, issuer: tokens.issuer, audience: tokens.audience)
    let users = UserAuthenticator(verifier: verifier)
    var participants: ParticipantsComponents?
    var routes = ParticipantsRoutes.disabledRegistrations
    var participantsBackend: ParticipantsBackend?
    if !configuration.participants.integrationDisabled {
        let components = try await buildParticipants(
            configuration: configuration, loop: loop, supervisor: supervisor, syncClock: syncClock,
            tuneCoordination: tuneCoordination, logger: logger)
        participants = components
        participantsBackend = ParticipantsBackend(
            reader: components.reader, sync: SyncControl(scheduler: components.scheduler),
            batchLimit: configuration.participants.batchSize)
        routes =
            ParticipantsRoutes(
                reader: components.reader,
                users: users,
                admins: AdminAuthenticator(token: configuration.adminToken),
                sync: SyncControl(scheduler: components.scheduler),
                supervisor: supervisor,
                instanceID: configuration.instanceID
            ).registrations
    }

    let chat = try await buildChat(
        configuration: configuration, participants: participants, logger: logger.withLabel("chat"))
    routes += ChatRoutes(core: chat.core, users: users, logger: logger.withLabel("chat")).registrations

    let http = configuration.http
    let frontend = HTTPFrontend(
        loop: loop,
        settings: .init(
            host: http.host, port: http.port,
            limits: HTTPServerLimits(
                maxBodySize: http.maxBodySize, readTimeout: http.requestTimeout, requestDeadline: http.requestDeadline),
            drainTimeout: ShutdownBudget(total: configuration.shutdownTimeout).drain),
        supervisor: supervisor,
        routes: routes,
        metricsText: { metrics.emitToBuffer() },
        logger: logger.withLabel("http"))

    let grpc =
        configuration.grpc.enabled
        ? buildGRPC(
            configuration: configuration, verifier: verifier, supervisor: supervisor, participants: participantsBackend,
            chat: chat.core, logger: logger)
        : nil

    // Start order; shutdown runs in reverse: the frontends and the scheduler's producers drain
    // together first; then the stream consumer settles the batches in hand (within the grace
    // period), the batcher stops, and the elector releases the leader lock; then the cache and
    // the health monitor stop, Redis closes, and the chat store last.
    var services: [any Service] = [chat.closer, supervisor]
    if let cluster { services.append(cluster) }
    services.append(healthMonitor)
    // The key set is fetched from the start; until it arrives provider tokens answer 503.
    if let jwks { services.append(jwks) }
    var draining: [any Service] = [frontend]
    if let grpc { draining.append(grpc) }
    if let participants {
        services += [participants.cache, participants.coordinator]
        if let feed = participants.invalidationFeed { services.append(feed) }
        services += [participants.elector, participants.batcher, participants.consumer]
        draining.insert(participants.scheduler, at: 0)
    }
    services.append(draining.count == 1 ? frontend : DrainingTogether(draining))
    return ChatServiceApplication(
        supervisor: supervisor,
        healthMonitor: healthMonitor,
        frontend: frontend,
        grpc: grpc,
        participants: participants,
        chat: chat,
        services: services,
        configuration: configuration)
}

/// The gRPC API over the same actors as the HTTP routes (docs/GRPC.md).
private func buildGRPC(
    configuration: ServiceConfiguration, verifier: TokenVerifier, supervisor: RedisSupervisor,
    participants: ParticipantsBackend?, chat: ChatCore, logger: Logger
) -> GRPCFrontend {
    let authenticator = CallAuthenticator(verifier: verifier, adminToken: configuration.adminToken)
    let health = HealthService(services: [
        ParticipantsRPCService.healthName: .notServing,
        // The chat API serves whenever the process does: it degrades inside (store errors are
        // UNAVAILABLE per call, unresolved authors are flagged), never as a whole.
        ChatRPCService.healthName: .serving,
    ])
    // The participants entry follows Redis (NOT_SERVING while degraded); with the layer
    // disabled it stays NOT_SERVING.
    let feeds = participants == nil ? [] : [HealthFeed.redis(supervisor, service: ParticipantsRPCService.healthName)]
    return GRPCFrontend(
        settings: GRPCSettings(
            host: configuration.grpc.host, port: configuration.grpc.port,
            drainTimeout: ShutdownBudget(total: configuration.shutdownTimeout).drain,
            // The same bound as an HTTP request body.
            maxRequestBytes: configuration.http.maxBodySize),
        services: [
            ParticipantsRPCService(backend: participants, authenticator: authenticator),
            ChatRPCService(core: chat, authenticator: authenticator),
        ],
        health: health,
        healthFeeds: feeds,
        logger: logger.withLabel("grpc"))
}

private func buildParticipants(
    configuration: ServiceConfiguration, loop: EventLoop, supervisor: RedisSupervisor,
    syncClock: any SyncClock, tuneCoordination: (inout CoordinationSettings) -> Void, logger: Logger
) async throws -> ParticipantsComponents {
    let settings = configuration.participants
    let coordination = InstanceCoordination(
        instanceID: configuration.instanceID,
        refreshLockTTL: InstanceCoordination.refreshLockTTL(maxAPITimeout: settings.maxAPITimeout))
    let cache = ParticipantsCache(
        supervisor: supervisor, loop: loop,
        settings: CacheSettings(
            ttl: settings.cacheTTL, staleThreshold: settings.staleThreshold, keep: settings.cacheKeep,
            notFoundTTL: settings.notFoundTTL, l1Capacity: settings.l1Size),
        coordination: coordination,
        now: { syncClock.now() },
        logger: logger.withLabel("cache"))
    let invalidationFeed =
        settings.l1Size > 0
        ? InvalidationFeed(
            supervisor: supervisor, cache: cache, coordination: coordination, loop: loop,
            now: { syncClock.now() }, logger: logger.withLabel("invalidation"))
        : nil
    var upstreamSettings = UpstreamClient.Settings()
    upstreamSettings.maxCallDuration = settings.maxAPITimeout
    upstreamSettings.perAttemptTimeout = min(settings.maxAPITimeout, upstreamSettings.perAttemptTimeout)
    // One connection per batch the batcher may have in flight, plus room for reads, refreshes and
    // the chat list: evhttp sends one request at a time per connection, so fewer connections
    // would cap the adaptive limit below its ceiling (8 did: a 50 ms upstream ran at ~8 in flight
    // whatever the limit said).
    upstreamSettings.maxConnections = settings.maxBatchesInFlight + 8
    // https: the certificate and host name are verified against PARTICIPANTS_API_CA_FILE, or the
    // system's CAs; the configuration already checked that the file loads.
    let tls = try settings.apiCAFile.map { path throws(TLSConfigurationError) in try TLSClientContext(caFile: path) }
    let upstream = try UpstreamClient(
        loop: loop, baseURL: settings.apiURL, token: settings.apiToken, tls: tls, settings: upstreamSettings,
        logger: logger.withLabel("upstream"))
    let coordinator = RefreshCoordinator(
        upstream: upstream, cache: cache, loop: loop, supervisor: supervisor, coordination: coordination,
        now: { syncClock.now() }, logger: logger.withLabel("refresh"))

    var schedulerSettings = Scheduler.Settings()
    schedulerSettings.updateInterval = settings.updateInterval
    schedulerSettings.fullUpdateHour = settings.fullUpdateHour
    schedulerSettings.timeZone = settings.timeZone
    schedulerSettings.batchSize = settings.batchSize
    schedulerSettings.maxBatchesInFlight = settings.maxBatchesInFlight
    schedulerSettings.staleThreshold = settings.staleThreshold
    // Manual full refreshes run even without background sync: they are an operator's request.
    schedulerSettings.intervalRunsEnabled = settings.backgroundSyncEnabled
    schedulerSettings.fullRunsEnabled = settings.backgroundSyncEnabled
    schedulerSettings.catchUpRunsEnabled = settings.backgroundSyncEnabled
    // Every instance shares the sync work through Redis (docs/COORDINATION.md). A batch
    // delivered to an instance is taken for lost after twice the longest a batch can take: an
    // upstream call with its retries plus the Redis write.
    var coordinationSettings = CoordinationSettings(instanceID: configuration.instanceID)
    coordinationSettings.lockTTL = settings.leaderLockTTL
    coordinationSettings.claimMinIdle = max(
        .seconds(1), (settings.maxAPITimeout + configuration.redis.commandTimeout) * 2)
    tuneCoordination(&coordinationSettings)
    let syncCoordination = SyncCoordination(supervisor: supervisor, loop: loop, settings: coordinationSettings)
    let syncLogger = logger.withLabel("sync")
    let elector = LeaderElector(
        supervisor: supervisor, loop: loop, instanceID: configuration.instanceID, ttl: settings.leaderLockTTL,
        logger: syncLogger)
    let batcher = Batcher(
        upstream: upstream, store: cache, clock: syncClock, loop: loop,
        concurrency: ConcurrencyLimit.Settings(mode: settings.batchConcurrency, maximum: settings.maxBatchesInFlight),
        logger: syncLogger)
    let consumer = BatchStreamConsumer(
        supervisor: supervisor, loop: loop, settings: coordinationSettings, errorLimit: schedulerSettings.errorLimit,
        batcher: batcher, clock: syncClock,
        shutdownGracePeriod: ShutdownBudget(total: configuration.shutdownTimeout).drain, logger: syncLogger)
    let scheduler = Scheduler(
        settings: schedulerSettings, upstream: upstream, store: cache, clock: syncClock,
        redisStateChanges: await supervisor.stateChanges(), coordination: syncCoordination,
        elector: elector, consumer: consumer, batcher: batcher, logger: syncLogger)

    logger.info(
        "participants layer",
        metadata: [
            "participants.background_sync": "\(settings.backgroundSyncEnabled)",
            "participants.leader_lock_ttl": "\(settings.leaderLockTTL)",
            "participants.batch_claim_min_idle": "\(coordinationSettings.claimMinIdle)",
            "participants.lazy_update": "\(settings.lazyUpdateEnabled)",
            "participants.integration_disabled": "false",
            "participants.api_url": "\(settings.apiURL)",
        ])
    return ParticipantsComponents(
        cache: cache, upstream: upstream, coordinator: coordinator,
        reader: ParticipantsReader(cache: cache, coordinator: coordinator, lazyUpdate: settings.lazyUpdateEnabled),
        scheduler: scheduler, elector: elector, batcher: batcher, consumer: consumer,
        invalidationFeed: invalidationFeed)
}

extension SyncControl {
    /// The operator routes' view of a ``Scheduler``.
    init(scheduler: Scheduler) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        self.init(
            requestFullRun: { await scheduler.requestFullRun(trigger: "admin").rawValue },
            runStatus: { id in
                guard let run = await scheduler.run(RunID(rawValue: id)) else { return nil }
                return (try? encoder.encode(run)).map { Array($0) }
            },
            status: { (try? encoder.encode(await scheduler.status())).map { Array($0) } ?? Array("{}".utf8) })
    }
}

extension Logger {
    /// A copy with the same handler settings and a `component` metadata key.
    func withLabel(_ component: String) -> Logger {
        var copy = self
        copy[metadataKey: "component"] = "\(component)"
        return copy
    }
}
