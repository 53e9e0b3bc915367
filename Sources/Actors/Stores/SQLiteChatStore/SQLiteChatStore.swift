public import Actors
import ChatRuntime
import Foundation
import GRDB
public import Logging

/// The embedded ``ChatStore``: one SQLite file (the system libsqlite3, through GRDB) in WAL
/// mode. GRDB runs every statement on its own dispatch queues (one writer, a pool of readers),
/// so callers on the I/O loop only await. Instances on one host may share the file (writes
/// wait for each other up to the busy timeout); instances on several hosts need PostgreSQL.
public final class SQLiteChatStore: ChatStore {
    private let pool: DatabasePool

    /// Opens (creating when missing) the database at `path` and applies pending migrations.
    /// - Parameter busyTimeout: how long a write waits for another process's write lock.
    public static func open(path: String, busyTimeout: Duration = .seconds(5), logger: Logger) async throws
        -> SQLiteChatStore
    {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        // Another process writing (a second instance on this host) makes writers wait, not fail.
        configuration.busyMode = .timeout(
            Double(busyTimeout.components.seconds) + Double(busyTimeout.components.attoseconds) / 1e18)
        configuration.label = "chat-store"
        let pool = try DatabasePool(path: path, configuration: configuration)
        let applied = try await SQLiteChatSchema.migrate(pool)
        logger.info(
            "chat store ready",
            metadata: [
                "chat.store": "sqlite", "chat.sqlite_path": "\(path)",
                "chat.migrations_applied": "\(applied.joined(separator: ","))",
            ])
        return SQLiteChatStore(pool: pool)
    }

    private init(pool: DatabasePool) {
        self.pool = pool
    }

    /// The versions applied so far, oldest first; for tests.
    public func appliedMigrations() async throws -> [String] {
        try await pool.read { db in try SQLiteChatSchema.migrator.appliedMigrations(db) }
    }

    /// The database's journal mode (`wal`); for tests.
    public func journalMode() async throws -> String {
        try await pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    // MARK: ChatStore

    public func createChat(_ chat: Chat, members: [ChatMember]) async throws(ChatStoreError) -> Bool {
        try await write { db in
            try db.execute(
                sql:
                    "INSERT INTO chats (id, title, created_by, created_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                arguments: [chat.id.rawValue, chat.title, chat.createdBy, chat.createdAt.chatStoreMilliseconds])
            guard db.changesCount == 1 else { return false }
            for member in members { try Self.insertMember(member, db) }
            return true
        }
    }

    public func chat(_ id: ChatID) async throws(ChatStoreError) -> Chat? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT id, title, created_by, created_at_ms FROM chats WHERE id = ?", arguments: [id.rawValue]
            )
            .map(Self.chat)
        }
    }

    public func membership(of userID: String, in chat: ChatID) async throws(ChatStoreError) -> StoreMembership {
        try await read { db in
            let hosted = try Row.fetchOne(
                db, sql: "SELECT id, title, created_by, created_at_ms FROM chats WHERE id = ?",
                arguments: [chat.rawValue]
            ).map(Self.chat)
            let isMember =
                try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM chat_members WHERE chat_id = ? AND user_id = ?)",
                    arguments: [chat.rawValue, userID]) ?? false
            return StoreMembership(chat: hosted, isMember: isMember)
        }
    }

    public func members(of chat: ChatID) async throws(ChatStoreError) -> [ChatMember] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT chat_id, user_id, added_by, added_at_ms FROM chat_members WHERE chat_id = ? ORDER BY added_at_ms, user_id",
                arguments: [chat.rawValue]
            ).map(Self.member)
        }
    }

    public func addMember(_ member: ChatMember) async throws(ChatStoreError) -> Bool {
        try await write { db in
            try Self.insertMember(member, db)
            return db.changesCount == 1
        }
    }

    public func appendMessage(_ draft: MessageDraft) async throws(ChatStoreError) -> MessageAppend {
        try await write { db in
            // NULL keys never conflict (SQL's NULLs are distinct), so keyless posts always insert.
            try db.execute(
                sql: """
                    INSERT INTO messages (chat_id, author_id, text, created_at_ms, idempotency_key) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (chat_id, author_id, idempotency_key) DO NOTHING
                    """,
                arguments: [
                    draft.chatID.rawValue, draft.authorID, draft.text, draft.createdAt.chatStoreMilliseconds,
                    draft.idempotencyKey,
                ])
            if db.changesCount == 1 {
                return .created(
                    ChatMessage(
                        id: MessageID(rawValue: db.lastInsertedRowID), chatID: draft.chatID, authorID: draft.authorID,
                        text: draft.text, createdAt: draft.createdAt, idempotencyKey: draft.idempotencyKey))
            }
            guard
                let row = try Row.fetchOne(
                    db,
                    sql:
                        "SELECT \(Self.messageColumns) FROM messages WHERE chat_id = ? AND author_id = ? AND idempotency_key = ?",
                    arguments: [draft.chatID.rawValue, draft.authorID, draft.idempotencyKey])
            else { throw ChatStoreError(.corrupt, "an idempotency conflict without the conflicting message") }
            let existing = try Self.message(row)
            return existing.text == draft.text ? .replayed(existing) : .keyReused(existing)
        }
    }

    public func messages(in chat: ChatID, before: MessageID?, limit: Int) async throws(ChatStoreError) -> [ChatMessage]
    {
        try await read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT \(Self.messageColumns) FROM messages WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                arguments: [chat.rawValue, before?.rawValue ?? Int64.max, limit]
            ).map(Self.message)
        }
    }

    // MARK: Rows

    private static let messageColumns = "id, chat_id, author_id, text, created_at_ms, idempotency_key"

    private static func insertMember(_ member: ChatMember, _ db: Database) throws {
        try db.execute(
            sql:
                "INSERT INTO chat_members (chat_id, user_id, added_by, added_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (chat_id, user_id) DO NOTHING",
            arguments: [member.chatID.rawValue, member.userID, member.addedBy, member.addedAt.chatStoreMilliseconds])
    }

    private static func chatID(_ text: String) throws -> ChatID {
        guard let id = ChatID(validating: text) else {
            throw ChatStoreError(.corrupt, "stored chat id \(text) is invalid")
        }
        return id
    }

    private static func chat(_ row: Row) throws -> Chat {
        Chat(
            id: try chatID(row["id"]), title: row["title"], createdBy: row["created_by"],
            createdAt: Date(chatStoreMilliseconds: row["created_at_ms"]))
    }

    private static func member(_ row: Row) throws -> ChatMember {
        ChatMember(
            chatID: try chatID(row["chat_id"]), userID: row["user_id"], addedBy: row["added_by"],
            addedAt: Date(chatStoreMilliseconds: row["added_at_ms"]))
    }

    private static func message(_ row: Row) throws -> ChatMessage {
        ChatMessage(
            id: MessageID(rawValue: row["id"]), chatID: try chatID(row["chat_id"]), authorID: row["author_id"],
            text: row["text"], createdAt: Date(chatStoreMilliseconds: row["created_at_ms"]),
            idempotencyKey: row["idempotency_key"])
    }

    // MARK: Error mapping

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(ChatStoreError) -> T
    {
        do {
            return try await pool.read(Self.offTheLoop(body))
        } catch {
            throw Self.storeError(error)
        }
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(ChatStoreError)
        -> T
    {
        do {
            return try await pool.write(Self.offTheLoop(body))
        } catch {
            throw Self.storeError(error)
        }
    }

    /// SQLite blocks (disk I/O, the busy timeout). GRDB's async `read` and `write` run their
    /// bodies on its own dispatch queues; this checks it, in every debug build and test run, so
    /// a change that made a store call run on the caller's thread (an I/O loop) is caught.
    private static func offTheLoop<T>(
        _ body: @escaping @Sendable (Database) throws -> T
    ) -> @Sendable (Database) throws -> T {
        { db in
            assert(!EventLoop.onAnyLoopThread, "a blocking SQLite call ran on an I/O loop thread")
            return try body(db)
        }
    }

    private static func storeError(_ error: any Error) -> ChatStoreError {
        (error as? ChatStoreError) ?? ChatStoreError(.unavailable, "sqlite: \(error)")
    }
}
