public import Actors
public import ChatRuntime
public import Foundation
public import Logging
public import PostgresChatStore

/// The whole configuration of `chat-service serve`, read from the environment
/// (see ``EnvironmentVariable/all`` for every variable, its default and meaning).
public struct ServiceConfiguration: Sendable {
    /// Redis connection and supervision.
    public struct Redis: Sendable {
        public var endpoint: RedisEndpoint
        public var maxRetries: Int
        public var retryDelay: Duration
        public var maxRetryDelay: Duration
        public var healthCheckInterval: Duration
        public var connectTimeout: Duration
        public var commandTimeout: Duration
        /// REDIS_SENTINELS; empty without Sentinel.
        public var sentinels: [RedisServerAddress]
        /// REDIS_SENTINEL_MASTER.
        public var sentinelMaster: String
        /// REDIS_CLUSTER_NODES: the seed nodes of a Redis Cluster; empty without one.
        public var clusterNodes: [RedisServerAddress]
        /// REDIS_CLUSTER_REFRESH_INTERVAL: the period of topology reads in cluster mode.
        public var clusterRefreshInterval: Duration

        /// Sentinel discovery, when sentinels are configured.
        public var sentinel: RedisSentinelSettings? {
            sentinels.isEmpty ? nil : RedisSentinelSettings(sentinels: sentinels, masterName: sentinelMaster)
        }
    }

    /// The participants layer.
    public struct Participants: Sendable {
        public var cacheTTL: Duration
        public var staleThreshold: Duration
        public var cacheKeep: Duration
        public var updateInterval: Duration
        public var fullUpdateHour: Int
        public var timeZone: TimeZone
        public var batchSize: Int
        /// PARTICIPANTS_MAX_BATCHES_IN_FLIGHT: the ceiling of the adaptive limit; the fixed one.
        public var maxBatchesInFlight: Int
        /// PARTICIPANTS_BATCH_CONCURRENCY: whether batches in flight adapt to upstream (``ConcurrencyLimit``).
        public var batchConcurrency: ConcurrencyLimit.Mode
        public var maxAPITimeout: Duration
        public var backgroundSyncEnabled: Bool
        public var lazyUpdateEnabled: Bool
        public var integrationDisabled: Bool
        public var l1Size: Int
        public var notFoundTTL: Duration
        /// PARTICIPANTS_LEADER_LOCK_TTL: the sync leader lock's TTL (docs/COORDINATION.md).
        public var leaderLockTTL: Duration
        public var apiURL: String
        public var apiToken: String?
        /// PARTICIPANTS_API_CA_FILE: the CAs trusted for an https upstream; nil: the system's.
        public var apiCAFile: String?
    }

    /// How user tokens are verified (``TokenVerifier``).
    public struct UserTokens: Sendable {
        /// JWT_SECRET: HS256 tokens.
        public var secret: String?
        /// JWT_JWKS_URL: RS256, ES256 and EdDSA tokens, with the provider's published keys.
        public var jwksURL: String?
        /// JWT_ISSUER.
        public var issuer: String?
        /// JWT_AUDIENCE.
        public var audience: String?
    }

    /// The chat API's store and limits (issue 8).
    public struct ChatSettings: Sendable {
        public enum Store: Sendable, Equatable {
            case sqlite(path: String)
            case postgres(PostgresURL)
        }

        public var store: Store
        /// CHAT_STORE_TIMEOUT.
        public var storeTimeout: Duration
        public var messageMaxBytes: Int
        public var participantsTimeout: Duration
    }

    /// The HTTP listener.
    public struct HTTP: Sendable {
        public var host: String
        public var port: Int
        public var requestTimeout: Duration
        public var requestDeadline: Duration
        public var maxBodySize: Int
    }

    /// The gRPC listener (docs/GRPC.md).
    public struct GRPC: Sendable {
        /// GRPC_ENABLED: false serves no gRPC at all.
        public var enabled: Bool
        /// An IPv4 or IPv6 literal.
        public var host: String
        /// 0 binds any free port.
        public var port: Int
    }

    public var redis: Redis
    public var participants: Participants
    public var chat: ChatSettings
    public var http: HTTP
    public var grpc: GRPC
    public var adminToken: String?
    public var userTokens: UserTokens
    /// JWT_SECRET.
    public var jwtSecret: String? { userTokens.secret }
    /// DNS_RESOLV_CONF: where the event loop's resolver finds its nameservers.
    public var resolver: ResolverSettings
    public var shutdownTimeout: Duration
    /// This instance's name in logs and `/internal/participants/status`.
    public var instanceID: String
    public var logLevel: Logger.Level
    public var logFormat: LogFormat

    /// Reads and validates every variable; the first bad one throws.
    public init(environment: [String: String]) throws(ConfigurationError) {
        let env = EnvironmentReader(environment: environment)

        let redisURL = try env.requiredString("REDIS_URL")
        let endpoint: RedisEndpoint
        do {
            endpoint = try RedisEndpoint(url: redisURL)
        } catch {
            throw ConfigurationError(
                variable: "REDIS_URL", value: Self.redactingPassword(redisURL),
                expected: "redis://[user:password@]host:port/db (\(error))")
        }
        redis = Redis(
            endpoint: endpoint,
            maxRetries: try env.integer("REDIS_MAX_RETRIES", in: 0...1000),
            retryDelay: try env.duration("REDIS_RETRY_DELAY", minimum: .milliseconds(1), maximum: .seconds(3600)),
            maxRetryDelay: try env.duration(
                "REDIS_MAX_RETRY_DELAY", minimum: .milliseconds(1), maximum: .seconds(3600)),
            healthCheckInterval: try env.duration(
                "REDIS_HEALTH_CHECK_INTERVAL", minimum: .milliseconds(10), maximum: .seconds(3600)),
            connectTimeout: try env.duration(
                "REDIS_CONNECT_TIMEOUT", minimum: .milliseconds(1), maximum: .seconds(600)),
            commandTimeout: try env.duration(
                "REDIS_COMMAND_TIMEOUT", minimum: .milliseconds(1), maximum: .seconds(600)),
            sentinels: try Self.sentinels(env),
            sentinelMaster: try Self.sentinelMaster(env),
            clusterNodes: try Self.clusterNodes(env, endpoint: endpoint),
            clusterRefreshInterval: try env.duration(
                "REDIS_CLUSTER_REFRESH_INTERVAL", minimum: .milliseconds(100), maximum: .seconds(86_400)))

        let timeZoneName = try env.requiredString("PARTICIPANTS_TIMEZONE")
        guard let timeZone = TimeZone(identifier: timeZoneName) else {
            throw ConfigurationError(
                variable: "PARTICIPANTS_TIMEZONE", value: timeZoneName,
                expected: "an IANA time zone such as UTC or Europe/Berlin")
        }
        participants = Participants(
            cacheTTL: try env.duration("PARTICIPANTS_CACHE_TTL", minimum: .seconds(1)),
            staleThreshold: try env.duration("PARTICIPANTS_STALE_THRESHOLD", minimum: .seconds(1)),
            cacheKeep: try env.duration("PARTICIPANTS_CACHE_KEEP"),
            updateInterval: try env.duration("PARTICIPANTS_UPDATE_INTERVAL", minimum: .seconds(1)),
            fullUpdateHour: try env.integer("PARTICIPANTS_FULL_UPDATE_HOUR", in: 0...23),
            timeZone: timeZone,
            batchSize: try env.integer("PARTICIPANTS_BATCH_SIZE", in: 1...1000),
            maxBatchesInFlight: try env.integer("PARTICIPANTS_MAX_BATCHES_IN_FLIGHT", in: 1...256),
            batchConcurrency: try Self.batchConcurrency(env),
            maxAPITimeout: try env.duration(
                "PARTICIPANTS_MAX_API_TIMEOUT", minimum: .milliseconds(10), maximum: .seconds(600)),
            backgroundSyncEnabled: try env.bool("PARTICIPANTS_ENABLE_BACKGROUND_SYNC"),
            lazyUpdateEnabled: try env.bool("PARTICIPANTS_ENABLE_LAZY_UPDATE"),
            integrationDisabled: try env.bool("PARTICIPANTS_INTEGRATION_DISABLED"),
            l1Size: try env.integer("PARTICIPANTS_L1_SIZE", in: 0...10_000_000),
            notFoundTTL: try env.duration(
                "PARTICIPANTS_NOT_FOUND_TTL", minimum: .seconds(1), maximum: .seconds(86_400)),
            leaderLockTTL: try env.duration(
                "PARTICIPANTS_LEADER_LOCK_TTL", minimum: .seconds(1), maximum: .seconds(3600)),
            apiURL: try env.httpURL("PARTICIPANTS_API_URL"),
            apiToken: env.string("PARTICIPANTS_API_TOKEN"),
            apiCAFile: try Self.loadableCAFile(
                env.readableFile("PARTICIPANTS_API_CA_FILE"), variable: "PARTICIPANTS_API_CA_FILE"))

        chat = ChatSettings(
            store: try Self.chatStore(env),
            storeTimeout: try env.duration("CHAT_STORE_TIMEOUT", minimum: .milliseconds(10), maximum: .seconds(600)),
            messageMaxBytes: try env.integer("CHAT_MESSAGE_MAX_BYTES", in: 1...(1 << 20)),
            participantsTimeout: try env.duration(
                "CHAT_PARTICIPANTS_TIMEOUT", minimum: .milliseconds(10), maximum: .seconds(600)))

        http = HTTP(
            host: try env.requiredString("HTTP_HOST"),
            port: try env.integer("HTTP_PORT", in: 0...65_535),
            requestTimeout: try env.duration(
                "HTTP_REQUEST_TIMEOUT", minimum: .milliseconds(100), maximum: .seconds(3600)),
            requestDeadline: try env.duration(
                "HTTP_REQUEST_DEADLINE", minimum: .milliseconds(100), maximum: .seconds(3600)),
            maxBodySize: try env.integer("HTTP_MAX_BODY_SIZE", in: 0...(64 << 20)))
        grpc = GRPC(
            enabled: try env.bool("GRPC_ENABLED"),
            host: try env.ipAddress("GRPC_HOST"),
            port: try env.integer("GRPC_PORT", in: 0...65_535))
        adminToken = env.string("ADMIN_TOKEN")
        userTokens = UserTokens(
            secret: env.string("JWT_SECRET"),
            jwksURL: try env.optionalHTTPURL("JWT_JWKS_URL"),
            issuer: env.string("JWT_ISSUER"),
            audience: env.string("JWT_AUDIENCE"))
        resolver = ResolverSettings(resolvConfPath: try Self.resolvConf(env))
        instanceID =
            env.string("INSTANCE_ID")
            ?? "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        shutdownTimeout = try env.duration("SHUTDOWN_TIMEOUT", minimum: .milliseconds(100), maximum: .seconds(3600))

        let level = try env.oneOf("LOG_LEVEL", Logger.Level.allCases.map(\.rawValue))
        logLevel = Logger.Level(rawValue: level) ?? .info
        logFormat = LogFormat(rawValue: try env.oneOf("LOG_FORMAT", LogFormat.allCases.map(\.rawValue))) ?? .text
    }

    private static func chatStore(_ env: EnvironmentReader) throws(ConfigurationError) -> ChatSettings.Store {
        switch try env.oneOf("CHAT_STORE", ["sqlite", "postgres"]) {
        case "postgres":
            guard let text = env.string("CHAT_POSTGRES_URL") else {
                throw ConfigurationError(
                    variable: "CHAT_POSTGRES_URL", value: "",
                    expected: "a postgres:// URL (required when CHAT_STORE=postgres)")
            }
            do {
                return .postgres(try PostgresURL(parsing: text))
            } catch {
                throw ConfigurationError(
                    variable: "CHAT_POSTGRES_URL", value: redactingPassword(text),
                    expected: "postgres://user:password@host:port/database[?sslmode=disable|require] (\(error.message))"
                )
            }
        default:
            return .sqlite(path: try env.requiredString("CHAT_SQLITE_PATH"))
        }
    }

    /// A CA file OpenSSL can load: unreadable or not PEM certificates stop start-up here, not
    /// at the first upstream call.
    private static func loadableCAFile(_ path: String?, variable: String) throws(ConfigurationError) -> String? {
        guard let path else { return nil }
        do {
            _ = try TLSClientContext(caFile: path)
        } catch {
            throw ConfigurationError(
                variable: variable, value: path, expected: "a PEM file of CA certificates (\(error.message))")
        }
        return path
    }

    /// DNS_RESOLV_CONF; a file set explicitly must be readable (evdns would silently fall back
    /// to a nameserver on 127.0.0.1), the default may be missing (a minimal container).
    private static func resolvConf(_ env: EnvironmentReader) throws(ConfigurationError) -> String {
        if env.environment["DNS_RESOLV_CONF"].map({ !$0.isEmpty }) == true {
            return try env.readableFile("DNS_RESOLV_CONF") ?? ResolverSettings.system.resolvConfPath
        }
        return try env.requiredString("DNS_RESOLV_CONF")
    }

    private static func batchConcurrency(_ env: EnvironmentReader) throws(ConfigurationError) -> ConcurrencyLimit.Mode {
        let text = try env.oneOf("PARTICIPANTS_BATCH_CONCURRENCY", ConcurrencyLimit.Mode.allCases.map(\.rawValue))
        return ConcurrencyLimit.Mode(rawValue: text) ?? .adaptive
    }

    private static func sentinels(_ env: EnvironmentReader) throws(ConfigurationError) -> [RedisServerAddress] {
        guard let text = env.string("REDIS_SENTINELS") else { return [] }
        do {
            return try RedisServerAddress.parseList(text)
        } catch {
            throw ConfigurationError(
                variable: "REDIS_SENTINELS", value: text,
                expected:
                    "a comma-separated list of host:port, such as 10.0.0.1:26379,10.0.0.2:26379 (\(error.message))")
        }
    }

    /// REDIS_CLUSTER_NODES, checked against what cluster mode cannot do: be discovered through
    /// Sentinel as well, or use a database other than 0 (a cluster has only database 0).
    private static func clusterNodes(_ env: EnvironmentReader, endpoint: RedisEndpoint) throws(ConfigurationError)
        -> [RedisServerAddress]
    {
        guard let text = env.string("REDIS_CLUSTER_NODES") else { return [] }
        let nodes: [RedisServerAddress]
        do {
            nodes = try RedisServerAddress.parseList(text)
        } catch {
            throw ConfigurationError(
                variable: "REDIS_CLUSTER_NODES", value: text,
                expected:
                    "a comma-separated list of cluster seed nodes as host:port, such as 10.0.0.1:6379,10.0.0.2:6379 (\(error.message))"
            )
        }
        if let sentinels = env.string("REDIS_SENTINELS") {
            throw ConfigurationError(
                variable: "REDIS_CLUSTER_NODES", value: text,
                expected:
                    "to be unset when REDIS_SENTINELS is set (\(sentinels)): a Redis Cluster or a Sentinel group, not both"
            )
        }
        if endpoint.database != 0 {
            throw ConfigurationError(
                variable: "REDIS_URL", value: endpoint.redactedDescription,
                expected: "database 0 (or none) with REDIS_CLUSTER_NODES: a Redis Cluster has only database 0")
        }
        return nodes
    }

    private static func sentinelMaster(_ env: EnvironmentReader) throws(ConfigurationError) -> String {
        let name = try env.requiredString("REDIS_SENTINEL_MASTER")
        guard name.utf8.count <= 256,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
        else {
            throw ConfigurationError(
                variable: "REDIS_SENTINEL_MASTER", value: name,
                expected: "a master name of letters, digits, '.', '_' and '-' (as in 'sentinel monitor <name> ...')")
        }
        return name
    }

    /// Problems that are legal but probably unintended, logged as warnings at start-up.
    public var warnings: [String] {
        var warnings: [String] = []
        if participants.staleThreshold >= participants.cacheTTL {
            warnings.append(
                "PARTICIPANTS_STALE_THRESHOLD (\(formatDuration(participants.staleThreshold))) is not below PARTICIPANTS_CACHE_TTL (\(formatDuration(participants.cacheTTL))): entries are never served stale before their TTL; only PARTICIPANTS_CACHE_KEEP keeps a copy for stale-if-error"
            )
        }
        if redis.retryDelay > redis.maxRetryDelay {
            warnings.append("REDIS_RETRY_DELAY is above REDIS_MAX_RETRY_DELAY: every backoff step is the cap")
        }
        if userTokens.secret == nil && userTokens.jwksURL == nil {
            warnings.append("neither JWT_SECRET nor JWT_JWKS_URL is set: every /v1 request answers 401")
        }
        if let secret = userTokens.secret, secret.utf8.count < 32 {
            warnings.append("JWT_SECRET is shorter than 32 bytes: RFC 7518 §3.2 asks for at least 32 for HS256")
        }
        if adminToken == nil {
            warnings.append("ADMIN_TOKEN is not set: every /internal request answers 403")
        }
        if participants.leaderLockTTL <= redis.commandTimeout * 3 {
            warnings.append(
                "PARTICIPANTS_LEADER_LOCK_TTL (\(formatDuration(participants.leaderLockTTL))) is not above 3 × REDIS_COMMAND_TIMEOUT (\(formatDuration(redis.commandTimeout))): one slow renewal may cost the leader its lock"
            )
        }
        return warnings
    }

    /// The effective configuration as log metadata, secrets redacted.
    public var redactedSummary: [(name: String, value: String)] {
        let env: [String: String] = [
            "REDIS_URL": redis.endpoint.redactedDescription,
            "REDIS_MAX_RETRIES": "\(redis.maxRetries)",
            "REDIS_RETRY_DELAY": formatDuration(redis.retryDelay),
            "REDIS_MAX_RETRY_DELAY": formatDuration(redis.maxRetryDelay),
            "REDIS_HEALTH_CHECK_INTERVAL": formatDuration(redis.healthCheckInterval),
            "REDIS_CONNECT_TIMEOUT": formatDuration(redis.connectTimeout),
            "REDIS_COMMAND_TIMEOUT": formatDuration(redis.commandTimeout),
            "REDIS_SENTINELS": redis.sentinels.isEmpty
                ? "(none)" : redis.sentinels.map(\.description).joined(separator: ","),
            "REDIS_SENTINEL_MASTER": redis.sentinelMaster,
            "REDIS_CLUSTER_NODES": redis.clusterNodes.isEmpty
                ? "(none)" : redis.clusterNodes.map(\.description).joined(separator: ","),
            "REDIS_CLUSTER_REFRESH_INTERVAL": formatDuration(redis.clusterRefreshInterval),
            "PARTICIPANTS_CACHE_TTL": formatDuration(participants.cacheTTL),
            "PARTICIPANTS_STALE_THRESHOLD": formatDuration(participants.staleThreshold),
            "PARTICIPANTS_CACHE_KEEP": formatDuration(participants.cacheKeep),
            "PARTICIPANTS_UPDATE_INTERVAL": formatDuration(participants.updateInterval),
            "PARTICIPANTS_FULL_UPDATE_HOUR": "\(participants.fullUpdateHour)",
            "PARTICIPANTS_TIMEZONE": participants.timeZone.identifier,
            "PARTICIPANTS_BATCH_SIZE": "\(participants.batchSize)",
            "PARTICIPANTS_MAX_BATCHES_IN_FLIGHT": "\(participants.maxBatchesInFlight)",
            "PARTICIPANTS_BATCH_CONCURRENCY": participants.batchConcurrency.rawValue,
            "PARTICIPANTS_MAX_API_TIMEOUT": formatDuration(participants.maxAPITimeout),
            "PARTICIPANTS_ENABLE_BACKGROUND_SYNC": "\(participants.backgroundSyncEnabled)",
            "PARTICIPANTS_ENABLE_LAZY_UPDATE": "\(participants.lazyUpdateEnabled)",
            "PARTICIPANTS_INTEGRATION_DISABLED": "\(participants.integrationDisabled)",
            "PARTICIPANTS_L1_SIZE": "\(participants.l1Size)",
            "PARTICIPANTS_NOT_FOUND_TTL": formatDuration(participants.notFoundTTL),
            "PARTICIPANTS_LEADER_LOCK_TTL": formatDuration(participants.leaderLockTTL),
            "PARTICIPANTS_API_URL": participants.apiURL,
            "PARTICIPANTS_API_TOKEN": participants.apiToken == nil ? "(none)" : "***",
            "CHAT_STORE": chat.storeName,
            "CHAT_SQLITE_PATH": chat.sqlitePath ?? "(unused)",
            "CHAT_POSTGRES_URL": chat.postgresURL?.redactedDescription ?? "(none)",
            "CHAT_STORE_TIMEOUT": formatDuration(chat.storeTimeout),
            "CHAT_MESSAGE_MAX_BYTES": "\(chat.messageMaxBytes)",
            "CHAT_PARTICIPANTS_TIMEOUT": formatDuration(chat.participantsTimeout),
            "HTTP_HOST": http.host,
            "HTTP_PORT": "\(http.port)",
            "HTTP_REQUEST_TIMEOUT": formatDuration(http.requestTimeout),
            "HTTP_REQUEST_DEADLINE": formatDuration(http.requestDeadline),
            "HTTP_MAX_BODY_SIZE": "\(http.maxBodySize)",
            "GRPC_ENABLED": "\(grpc.enabled)",
            "GRPC_HOST": grpc.host,
            "GRPC_PORT": "\(grpc.port)",
            "ADMIN_TOKEN": adminToken == nil ? "(none)" : "***",
            "JWT_SECRET": userTokens.secret == nil ? "(none)" : "***",
            "JWT_JWKS_URL": userTokens.jwksURL ?? "(none)",
            "JWT_ISSUER": userTokens.issuer ?? "(none)",
            "JWT_AUDIENCE": userTokens.audience ?? "(none)",
            "PARTICIPANTS_API_CA_FILE": participants.apiCAFile ?? "(none)",
            "DNS_RESOLV_CONF": resolver.resolvConfPath,
            "INSTANCE_ID": instanceID,
            "SHUTDOWN_TIMEOUT": formatDuration(shutdownTimeout),
            "LOG_LEVEL": logLevel.rawValue,
            "LOG_FORMAT": logFormat.rawValue,
        ]
        return EnvironmentVariable.all.map { ($0.name, env[$0.name] ?? "?") }
    }

    /// `redis://user:secret@host` → `redis://user:***@host`, for error messages.
    static func redactingPassword(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let schemeEnd = url.range(of: "://")?.upperBound,
            schemeEnd < at
        else { return url }
        let credentials = url[schemeEnd..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<url.index(after: colon)]) + "***" + String(url[at...])
    }
}

extension ServiceConfiguration.ChatSettings {
    /// `sqlite` or `postgres`.
    public var storeName: String {
        switch store {
        case .sqlite: "sqlite"
        case .postgres: "postgres"
        }
    }

    var sqlitePath: String? {
        if case .sqlite(let path) = store { return path }
        return nil
    }

    var postgresURL: PostgresURL? {
        if case .postgres(let url) = store { return url }
        return nil
    }
}

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}
