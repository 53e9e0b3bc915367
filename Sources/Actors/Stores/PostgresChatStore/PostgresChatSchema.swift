import Logging
import PostgresNIO

/// The PostgreSQL schema as versioned migrations, applied at start-up in one transaction that
/// first takes a transaction-scoped advisory lock: two instances starting together apply each
/// version once, the second waiting for the first. `schema_migrations` records what is
/// applied. Append new versions; never edit an applied one.
enum PostgresChatSchema {
    struct Migration {
        let version: Int
        let name: String
        let statements: [PostgresQuery]
    }

    /// Arbitrary, fixed: the advisory lock key of chat-service's migrations.
    static let advisoryLockKey: Int64 = 0x63_68_61_74_73_76_63 // "chatsvc"

    static let migrations: [Migration] = [
        Migration(
            version: 1, name: "chats, members, messages",
            statements: [
                """
                CREATE TABLE chats (
                    id TEXT PRIMARY KEY,
                    title TEXT,
                    created_by TEXT NOT NULL,
                    created_at_ms BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE chat_members (
                    chat_id TEXT NOT NULL,
                    user_id TEXT NOT NULL,
                    added_by TEXT NOT NULL,
                    added_at_ms BIGINT NOT NULL,
                    PRIMARY KEY (chat_id, user_id)
                )
                """,
                """
                CREATE TABLE messages (
                    id BIGSERIAL PRIMARY KEY,
                    chat_id TEXT NOT NULL,
                    author_id TEXT NOT NULL,
                    text TEXT NOT NULL,
                    created_at_ms BIGINT NOT NULL,
                    idempotency_key TEXT,
                    UNIQUE (chat_id, author_id, idempotency_key)
                )
                """,
                "CREATE INDEX messages_by_chat ON messages (chat_id, id)",
            ])
    ]

    /// Applies pending migrations; returns every applied version, oldest first.
    static func migrate(_ client: PostgresClient, logger: Logger) async throws -> [Int] {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(advisoryLockKey))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                )
                """, logger: logger)
            var applied = Set(
                try await connection.query("SELECT version FROM schema_migrations", logger: logger)
                    .collect().map { try $0.decode(Int.self) })
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements { try await connection.query(statement, logger: logger) }
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger)
                applied.insert(migration.version)
                logger.notice(
                    "chat store migration applied",
                    metadata: [
                        "chat.migration": "\(migration.version)", "chat.migration_name": "\(migration.name)",
                    ])
            }
            return applied.sorted()
        }
    }
}
