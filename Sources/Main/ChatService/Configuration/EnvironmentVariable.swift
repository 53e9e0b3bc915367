/// One environment variable the service reads: the single list that `--help`, the start-up log,
/// the README table and the compose file are checked against.
public struct EnvironmentVariable: Sendable, Hashable {
    public let name: String
    /// The default as written in the environment; nil when unset means "none".
    public let defaultValue: String?
    public let meaning: String
    /// Never logged in clear.
    public let isSecret: Bool

    init(_ name: String, _ defaultValue: String?, _ meaning: String, secret: Bool = false) {
        self.name = name
        self.defaultValue = defaultValue
        self.meaning = meaning
        self.isSecret = secret
    }
}

extension EnvironmentVariable {
    /// Every variable, in the order of the README's configuration table.
    public static let all: [EnvironmentVariable] = [
        .init(
            "REDIS_URL", "redis://127.0.0.1:6379/0",
            "redis://[user:password@]host:port/db; password and ACL user supported", secret: true),
        .init("REDIS_MAX_RETRIES", "5", "reconnect attempts with backoff before Redis is declared unavailable"),
        .init(
            "REDIS_RETRY_DELAY", "1s",
            "first reconnect backoff step; doubles per attempt with jitter, capped by REDIS_MAX_RETRY_DELAY"),
        .init("REDIS_MAX_RETRY_DELAY", "30s", "cap of the reconnect backoff"),
        .init("REDIS_HEALTH_CHECK_INTERVAL", "30s", "PING period while ready; probe period while unavailable"),
        .init("REDIS_CONNECT_TIMEOUT", "2s", "bound for TCP connect, AUTH and SELECT"),
        .init(
            "REDIS_COMMAND_TIMEOUT", "2s",
            "bound for one command; a command past it drops the connection (frozen Redis)"),
        .init(
            "REDIS_SENTINELS", nil,
            "comma-separated sentinel host:port list; when set, each connect asks them for the master and REDIS_URL's host:port is ignored (its password and db apply)"
        ),
        .init("REDIS_SENTINEL_MASTER", "mymaster", "master name asked from REDIS_SENTINELS"),
        .init(
            "REDIS_CLUSTER_NODES", nil,
            "comma-separated host:port seed nodes of a Redis Cluster; when set, the service runs in cluster mode and REDIS_URL's host:port is ignored (its user and password apply; its db must be 0); not with REDIS_SENTINELS"
        ),
        .init(
            "REDIS_CLUSTER_REFRESH_INTERVAL", "30s",
            "period of cluster topology reads in cluster mode (also read on MOVED and when a primary's connection drops)"
        ),
        .init("PARTICIPANTS_CACHE_TTL", "1h", "Redis TTL of a chat's entry"),
        .init("PARTICIPANTS_STALE_THRESHOLD", "1h", "age after which an entry is stale (served, then refreshed)"),
        .init("PARTICIPANTS_CACHE_KEEP", "24h", "how long past its TTL the last good entry is kept for stale-if-error"),
        .init("PARTICIPANTS_UPDATE_INTERVAL", "15m", "period of the background refresh of tracked stale chats"),
        .init("PARTICIPANTS_FULL_UPDATE_HOUR", "3", "hour (0-23, in PARTICIPANTS_TIMEZONE) of the daily full refresh"),
        .init("PARTICIPANTS_TIMEZONE", "UTC", "time zone of PARTICIPANTS_FULL_UPDATE_HOUR (an IANA name)"),
        .init("PARTICIPANTS_BATCH_SIZE", "50", "chat ids per upstream batch call and per Redis pipeline"),
        .init(
            "PARTICIPANTS_MAX_BATCHES_IN_FLIGHT", "64",
            "ceiling of the batches the batcher works on at once: the adaptive limit stays at or below it; with PARTICIPANTS_BATCH_CONCURRENCY=fixed, always this many"
        ),
        .init(
            "PARTICIPANTS_BATCH_CONCURRENCY", "adaptive",
            "adaptive (batches in flight follow upstream's latency and 429/5xx/timeouts, up to PARTICIPANTS_MAX_BATCHES_IN_FLIGHT) or fixed (always PARTICIPANTS_MAX_BATCHES_IN_FLIGHT)"
        ),
        .init("PARTICIPANTS_MAX_API_TIMEOUT", "30s", "upper bound for one upstream call, retries included"),
        .init("PARTICIPANTS_ENABLE_BACKGROUND_SYNC", "true", "run the scheduler and batcher"),
        .init("PARTICIPANTS_ENABLE_LAZY_UPDATE", "true", "refresh stale entries on read"),
        .init(
            "PARTICIPANTS_INTEGRATION_DISABLED", "false",
            "turn the whole participants layer off; the rest of the service runs"),
        .init("PARTICIPANTS_L1_SIZE", "10000", "chats kept in the in-process L1 cache (0 disables it)"),
        .init("PARTICIPANTS_NOT_FOUND_TTL", "60s", "how long an upstream 404 is remembered"),
        .init(
            "PARTICIPANTS_LEADER_LOCK_TTL", "15s",
            "TTL of the sync leader lock, renewed every third of it; another instance takes over within about this long after the leader dies"
        ),
        .init("PARTICIPANTS_API_URL", "http://127.0.0.1:8090", "base URL of the upstream participants API"),
        .init("PARTICIPANTS_API_TOKEN", nil, "bearer token sent upstream", secret: true),
        .init(
            "PARTICIPANTS_API_CA_FILE", nil,
            "PEM file of the CA certificates trusted for an https PARTICIPANTS_API_URL instead of the system's store (a private CA); the certificate and host name are always verified"
        ),
        .init(
            "CHAT_STORE", "sqlite",
            "where chats and messages live: sqlite (an embedded file, one host) or postgres (shared by every instance)"),
        .init(
            "CHAT_SQLITE_PATH", "./chat-service.sqlite3", "the SQLite database file (WAL mode) when CHAT_STORE=sqlite"),
        .init(
            "CHAT_POSTGRES_URL", nil,
            "postgres://user:password@host:port/database[?sslmode=require]; required when CHAT_STORE=postgres",
            secret: true),
        .init(
            "CHAT_STORE_TIMEOUT", "5s",
            "bound for one chat store call (a PostgreSQL query with its connection wait, a SQLite write lock wait); past it the request answers 503"
        ),
        .init("CHAT_MESSAGE_MAX_BYTES", "4096", "largest message text in UTF-8 bytes"),
        .init(
            "CHAT_PARTICIPANTS_TIMEOUT", "2s",
            "bound for the participants lookup behind a chat request; past it the last known participants and the store's members decide"
        ),
        .init("HTTP_HOST", "0.0.0.0", "HTTP listen address"),
        .init("HTTP_PORT", "8082", "HTTP listen port"),
        .init("HTTP_REQUEST_TIMEOUT", "10s", "read/write timeout against slow HTTP clients"),
        .init("HTTP_REQUEST_DEADLINE", "30s", "longest a client may take to send one whole request (slowloris bound)"),
        .init("HTTP_MAX_BODY_SIZE", "1048576", "largest accepted request body in bytes"),
        .init("GRPC_ENABLED", "true", "serve the gRPC API (docs/GRPC.md); false opens no gRPC port"),
        .init("GRPC_HOST", "0.0.0.0", "gRPC listen address: an IPv4 or IPv6 literal"),
        .init("GRPC_PORT", "9092", "gRPC listen port (plaintext HTTP/2); 0 picks a free port"),
        .init(
            "ADMIN_TOKEN", nil, "required (Bearer) for /internal/*; without it those routes answer 403", secret: true),
        .init(
            "JWT_SECRET", nil, "HS256 secret for user tokens; without it and JWT_JWKS_URL, /v1/* answers 401",
            secret: true),
        .init(
            "JWT_JWKS_URL", nil,
            "http(s) URL of the identity provider's JWKS: RS256, ES256 and EdDSA user tokens are verified with its keys (fetched at start, again for an unknown kid at most every 30s)"
        ),
        .init("JWT_ISSUER", nil, "when set, a user token's iss must equal it"),
        .init("JWT_AUDIENCE", nil, "when set, a user token's aud must contain it"),
        .init(
            "DNS_RESOLV_CONF", "/etc/resolv.conf",
            "resolv.conf-format file naming the nameservers (ip or ip:port), search domains and options used to look up the Redis, Sentinel, upstream and JWKS hosts; /etc/hosts is read too"
        ),
        .init("INSTANCE_ID", nil, "this instance's name in logs and status; default: hostname-pid"),
        .init("SHUTDOWN_TIMEOUT", "10s", "bound for the graceful drain after SIGTERM or SIGINT"),
        .init("LOG_LEVEL", "info", "trace, debug, info, notice, warning, error or critical"),
        .init("LOG_FORMAT", "text", "text, or json for one JSON object a line"),
    ]

    /// The variable named `name`; traps for a name not in ``all`` (a programming error).
    static func named(_ name: String) -> EnvironmentVariable {
        guard let variable = all.first(where: { $0.name == name }) else {
            preconditionFailure("unknown environment variable \(name)")
        }
        return variable
    }
}
