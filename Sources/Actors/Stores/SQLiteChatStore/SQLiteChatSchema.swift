import GRDB

/// The SQLite schema as versioned migrations (GRDB's `DatabaseMigrator` records applied ones
/// in `grdb_migrations`). Append new versions; never edit an applied one. Times are Unix
/// milliseconds, as in the PostgreSQL schema, so both stores round-trip the same values.
enum SQLiteChatSchema {
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-chats-members-messages") { db in
            try db.execute(
                sql: """
                    CREATE TABLE chats (
                        id TEXT PRIMARY KEY NOT NULL,
                        title TEXT,
                        created_by TEXT NOT NULL,
                        created_at_ms INTEGER NOT NULL
                    );
                    CREATE TABLE chat_members (
                        chat_id TEXT NOT NULL,
                        user_id TEXT NOT NULL,
                        added_by TEXT NOT NULL,
                        added_at_ms INTEGER NOT NULL,
                        PRIMARY KEY (chat_id, user_id)
                    );
                    CREATE TABLE messages (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        chat_id TEXT NOT NULL,
                        author_id TEXT NOT NULL,
                        text TEXT NOT NULL,
                        created_at_ms INTEGER NOT NULL,
                        idempotency_key TEXT,
                        UNIQUE (chat_id, author_id, idempotency_key)
                    );
                    CREATE INDEX messages_by_chat ON messages (chat_id, id);
                    """)
        }
        return migrator
    }()

    /// Applies pending migrations on GRDB's writer queue; returns every applied version.
    static func migrate(_ pool: DatabasePool) async throws -> [String] {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            migrator.asyncMigrate(pool) { result in
                continuation.resume(with: result.map { _ in () })
            }
        }
        return try await pool.read { db in try migrator.appliedMigrations(db) }
    }
}
