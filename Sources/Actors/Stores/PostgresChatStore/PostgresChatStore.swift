public import Actors
import Foundation
public import Logging
import PostgresNIO

/// The ``ChatStore`` for deployments: PostgreSQL through postgres-nio's `PostgresClient` pool.
/// Every instance of the service shares the database. The client runs on NIO's own event
/// loops (never on the service's libevent loop) and is fully asynchronous, so nothing blocks
/// a caller's thread.
public final class PostgresChatStore: ChatStore {
    private let client: PostgresClient
    private let runTask: Task<Void, Never>
    private let logger: Logger
    /// Bound for one call, waiting for a connection included (CHAT_STORE_TIMEOUT).
    private let timeout: Duration

    /// Connects the pool, applies pending migrations (serialized across instances starting
    /// together) and returns the store. ``close()`` ends the pool.
    /// - Parameter timeout: bound for each call; a database that does not answer within it
    ///   (down, frozen, pool exhausted) fails the call with ``ChatStoreError`` instead of
    ///   holding the request.
    public static func open(url: PostgresURL, timeout: Duration = .seconds(5), logger: Logger) async throws
        -> PostgresChatStore
    {
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password,
            database: url.database, tls: url.requireTLS ? .require(.makeClientConfiguration()) : .disable)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = 16
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let store = PostgresChatStore(client: client, timeout: timeout, logger: logger)
        // `run()` starts on another task; a query leased before it has begun is still served,
        // but the client logs a warning. A moment's wait keeps start-up logs clean.
        try? await Task.sleep(for: .milliseconds(20))
        do {
            // Bounded: a database that never answers stops start-up instead of hanging it.
            let applied = try await withDeadline(max(timeout, .seconds(30))) {
                try await PostgresChatSchema.migrate(client, logger: logger)
            }
            logger.info(
                "chat store ready",
                metadata: [
                    "chat.store": "postgres", "chat.postgres_url": "\(url.redactedDescription)",
                    "chat.migrations_applied": "\(applied.map(String.init).joined(separator: ","))",
                ])
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    private init(client: PostgresClient, timeout: Duration, logger: Logger) {
        self.client = client
        self.timeout = timeout
        self.logger = logger
        runTask = Task { await client.run() }
    }

    /// Closes the pool's connections; later calls fail.
    public func close() async {
        runTask.cancel()
        await runTask.value
    }

    /// The schema versions applied, oldest first; for tests.
    public func appliedMigrations() async throws -> [Int] {
        try await client.query("SELECT version FROM schema_migrations ORDER BY version", logger: logger)
            .collect().map { try $0.decode(Int.self) }
    }

    // MARK: ChatStore

    public func createChat(_ chat: Chat, members: [ChatMember]) async throws(ChatStoreError) -> Bool {
        try await call { [client, logger] () async throws -> Bool in
            try await client.withTransaction(logger: logger) { connection in
                let inserted = try await connection.query(
                    """
                    INSERT INTO chats (id, title, created_by, created_at_ms)
                    VALUES (\(chat.id.rawValue), \(chat.title), \(chat.createdBy), \(chat.createdAt.chatStoreMilliseconds))
                    ON CONFLICT (id) DO NOTHING RETURNING id
                    """, logger: logger
                ).collect()
                guard !inserted.isEmpty else { return false }
                for member in members { _ = try await Self.insertMember(member, connection, logger) }
                return true
            }
        }
    }

    public func chat(_ id: ChatID) async throws(ChatStoreError) -> Chat? {
        try await call { [client, logger] in
            try await client.query(
                "SELECT id, title, created_by, created_at_ms FROM chats WHERE id = \(id.rawValue)", logger: logger
            ).collect().first.map(Self.chat)
        }
    }

    public func membership(of userID: String, in chat: ChatID) async throws(ChatStoreError) -> StoreMembership {
        try await call { [client, logger] in
            // One round trip: the chat row (if any) and the membership test, via a LEFT JOIN
            // from a one-row VALUES list.
            let rows = try await client.query(
                """
                SELECT c.id, c.title, c.created_by, c.created_at_ms,
                       EXISTS (SELECT 1 FROM chat_members m WHERE m.chat_id = \(chat.rawValue) AND m.user_id = \(userID))
                FROM (VALUES (1)) AS one (x) LEFT JOIN chats c ON c.id = \(chat.rawValue)
                """, logger: logger
            ).collect()
            guard let row = rows.first else { return StoreMembership(chat: nil, isMember: false) }
            let (id, title, createdBy, createdAt, isMember) = try row.decode(
                (String?, String?, String?, Int64?, Bool).self)
            var hosted: Chat?
            if let id, let createdBy, let createdAt {
                hosted = Chat(
                    id: try Self.chatID(id), title: title, createdBy: createdBy,
                    createdAt: Date(chatStoreMilliseconds: createdAt))
            }
            return StoreMembership(chat: hosted, isMember: isMember)
        }
    }

    public func members(of chat: ChatID) async throws(ChatStoreError) -> [ChatMember] {
        try await call { [client, logger] in
            try await client.query(
                """
                SELECT chat_id, user_id, added_by, added_at_ms FROM chat_members
                WHERE chat_id = \(chat.rawValue) ORDER BY added_at_ms, user_id
                """, logger: logger
            ).collect().map { row in
                let (chatID, userID, addedBy, addedAt) = try row.decode((String, String, String, Int64).self)
                return ChatMember(
                    chatID: try Self.chatID(chatID), userID: userID, addedBy: addedBy,
                    addedAt: Date(chatStoreMilliseconds: addedAt))
            }
        }
    }

    public func addMember(_ member: ChatMember) async throws(ChatStoreError) -> Bool {
        try await call { [client, logger] in
            try await client.withConnection { connection in try await Self.insertMember(member, connection, logger) }
        }
    }

    public func appendMessage(_ draft: MessageDraft) async throws(ChatStoreError) -> MessageAppend {
        try await call { [client, logger] in
            // NULL keys never conflict, so keyless posts always insert. A concurrent insert with
            // the same key waits for the first to commit, then does nothing; the SELECT after
            // it (a new snapshot under READ COMMITTED) sees the winner.
            let inserted = try await client.query(
                """
                INSERT INTO messages (chat_id, author_id, text, created_at_ms, idempotency_key)
                VALUES (\(draft.chatID.rawValue), \(draft.authorID), \(draft.text), \(draft.createdAt.chatStoreMilliseconds), \(draft.idempotencyKey))
                ON CONFLICT (chat_id, author_id, idempotency_key) DO NOTHING RETURNING id
                """, logger: logger
            ).collect()
            if let row = inserted.first {
                return .created(
                    ChatMessage(
                        id: MessageID(rawValue: try row.decode(Int64.self)), chatID: draft.chatID,
                        authorID: draft.authorID,
                        text: draft.text, createdAt: draft.createdAt, idempotencyKey: draft.idempotencyKey))
            }
            guard
                let row = try await client.query(
                    """
                    SELECT id, chat_id, author_id, text, created_at_ms, idempotency_key FROM messages
                    WHERE chat_id = \(draft.chatID.rawValue) AND author_id = \(draft.authorID) AND idempotency_key = \(draft.idempotencyKey)
                    """, logger: logger
                ).collect().first
            else {
                throw ChatStoreError(.corrupt, "an idempotency conflict without the conflicting message")
            }
            let existing = try Self.message(row)
            return existing.text == draft.text ? .replayed(existing) : .keyReused(existing)
        }
    }

    public func messages(in chat: ChatID, before: MessageID?, limit: Int) async throws(ChatStoreError) -> [ChatMessage]
    {
        try await call { [client, logger] in
            try await client.query(
                """
                SELECT id, chat_id, author_id, text, created_at_ms, idempotency_key FROM messages
                WHERE chat_id = \(chat.rawValue) AND id < \(before?.rawValue ?? Int64.max)
                ORDER BY id DESC LIMIT \(limit)
                """, logger: logger
            ).collect().map(Self.message)
        }
    }

    // MARK: Rows

    private static func insertMember(_ member: ChatMember, _ connection: PostgresConnection, _ logger: Logger)
        async throws -> Bool
    {
        let rows = try await connection.query(
            """
            INSERT INTO chat_members (chat_id, user_id, added_by, added_at_ms)
            VALUES (\(member.chatID.rawValue), \(member.userID), \(member.addedBy), \(member.addedAt.chatStoreMilliseconds))
            ON CONFLICT (chat_id, user_id) DO NOTHING RETURNING user_id
            """, logger: logger
        ).collect()
        return !rows.isEmpty
    }

    private static func chatID(_ text: String) throws -> ChatID {
        guard let id = ChatID(validating: text) else {
            throw ChatStoreError(.corrupt, "stored chat id \(text) is invalid")
        }
        return id
    }

    private static func chat(_ row: PostgresRow) throws -> Chat {
        let (id, title, createdBy, createdAt) = try row.decode((String, String?, String, Int64).self)
        return Chat(
            id: try chatID(id), title: title, createdBy: createdBy, createdAt: Date(chatStoreMilliseconds: createdAt))
    }

    private static func message(_ row: PostgresRow) throws -> ChatMessage {
        let (id, chatID, authorID, text, createdAt, key) = try row.decode(
            (Int64, String, String, String, Int64, String?).self)
        return ChatMessage(
            id: MessageID(rawValue: id), chatID: try Self.chatID(chatID), authorID: authorID, text: text,
            createdAt: Date(chatStoreMilliseconds: createdAt), idempotencyKey: key)
    }

    // MARK: Error mapping

    private func call<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws(ChatStoreError) -> T {
        do {
            return try await withDeadline(timeout, body)
        } catch let error as ChatStoreError {
            throw error
        } catch {
            // String(reflecting:) keeps PSQLError's server message, which its description hides.
            throw ChatStoreError(.unavailable, "postgres: \(String(reflecting: error))")
        }
    }
}
