import Actors
import ChatRuntime
import Foundation
import Logging
import PostgresChatStore
import SQLiteChatStore
import TestSupport
import Testing

/// The stores the contract runs against: SQLite on a temporary file, PostgreSQL on a real
/// server (one per test process, a database per test).
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    var testDescription: String { rawValue }

    static let logger = Logger(label: "test.chat-store")

    /// Where a store of this kind keeps its data; opening the same location twice gives two
    /// handles on the same data (a restart, or a second instance).
    struct Location: Sendable {
        let kind: StoreKind
        let path: String

        func open() async throws -> OpenStore {
            switch kind {
            case .sqlite:
                return OpenStore(store: try await SQLiteChatStore.open(path: path, logger: StoreKind.logger), close: {})
            case .postgres:
                let store = try await PostgresChatStore.open(
                    url: try PostgresURL(parsing: path), logger: StoreKind.logger)
                return OpenStore(store: store, close: { await store.close() })
            }
        }

        func remove() {
            if kind == .sqlite { removeTemporarySQLite(path) }
        }
    }

    struct OpenStore: Sendable {
        let store: any ChatStore
        let close: @Sendable () async -> Void
    }

    func newLocation() async throws -> Location {
        switch self {
        case .sqlite: Location(kind: self, path: temporarySQLitePath())
        case .postgres: Location(kind: self, path: try await SharedPostgresServer.database())
        }
    }

    /// Runs `body` with a store on a fresh location, closed and removed afterwards.
    func withStore(_ body: (any ChatStore) async throws -> Void) async throws {
        let location = try await newLocation()
        defer { location.remove() }
        let opened = try await location.open()
        do {
            try await body(opened.store)
        } catch {
            await opened.close()
            throw error
        }
        await opened.close()
    }
}

/// One contract, both stores: what ``ChatStore`` promises, checked against real databases.
@Suite("Chat store contract", .serialized, .timeLimit(.minutes(3)))
struct ChatStoreContractTests {
    static let chat = ChatID(validating: "c-contract-1")!
    static let otherChat = ChatID(validating: "c-contract-2")!
    static let t0 = Date(chatStoreMilliseconds: 1_764_000_000_123)

    static func draft(_ text: String, chat: ChatID = chat, author: String = "alice", key: String? = nil) -> MessageDraft
    {
        MessageDraft(chatID: chat, authorID: author, text: text, createdAt: t0, idempotencyKey: key)
    }

    @Test(arguments: StoreKind.allCases)
    func chatsAndMembersRoundTrip(kind: StoreKind) async throws {
        try await kind.withStore { (store: any ChatStore) async throws in
            let chat = Chat(id: Self.chat, title: "Zürich 🚲", createdBy: "alice", createdAt: Self.t0)
            let alice = ChatMember(chatID: Self.chat, userID: "alice", addedBy: "alice", addedAt: Self.t0)
            #expect(try await store.createChat(chat, members: [alice]))
            #expect(
                try await store.createChat(
                    Chat(id: Self.chat, title: nil, createdBy: "mallory", createdAt: Self.t0), members: []) == false)
            #expect(try await store.chat(Self.chat) == chat)
            #expect(try await store.chat(Self.otherChat) == nil)

            #expect(
                try await store.membership(of: "alice", in: Self.chat) == StoreMembership(chat: chat, isMember: true))
            #expect(
                try await store.membership(of: "bob", in: Self.chat) == StoreMembership(chat: chat, isMember: false))
            #expect(
                try await store.membership(of: "alice", in: Self.otherChat)
                    == StoreMembership(chat: nil, isMember: false))

            let bob = ChatMember(
                chatID: Self.chat, userID: "bob", addedBy: "alice", addedAt: Self.t0.addingTimeInterval(1))
            #expect(try await store.addMember(bob))
            #expect(try await store.addMember(bob) == false)
            #expect(try await store.members(of: Self.chat) == [alice, bob])
            #expect(try await store.membership(of: "bob", in: Self.chat).isMember)

            // Members of a chat the store does not host (one only upstream knows).
            let carol = ChatMember(chatID: Self.otherChat, userID: "carol", addedBy: "dave", addedAt: Self.t0)
            #expect(try await store.addMember(carol))
            #expect(
                try await store.membership(of: "carol", in: Self.otherChat)
                    == StoreMembership(chat: nil, isMember: true))
        }
    }

    @Test(arguments: StoreKind.allCases)
    func messagesGetIncreasingIdsAndKeepTheirFields(kind: StoreKind) async throws {
        try await kind.withStore { (store: any ChatStore) async throws in
            var ids: [MessageID] = []
            for text in ["one", "twö", String(repeating: "x", count: 4096)] {
                guard case .created(let message) = try await store.appendMessage(Self.draft(text)) else {
                    Issue.record("not created")
                    return
                }
                #expect(message.text == text)
                ids.append(message.id)
            }
            #expect(ids == ids.sorted() && Set(ids).count == 3)
            let stored = try await store.messages(in: Self.chat, before: nil, limit: 10)
            #expect(stored.map(\.id) == ids.reversed())
            #expect(stored.last?.text == "one")
            #expect(stored.last?.createdAt == Self.t0)
            #expect(stored.last?.authorID == "alice")
            #expect(stored.last?.idempotencyKey == nil)
            #expect(try await store.messages(in: Self.otherChat, before: nil, limit: 10).isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func idempotencyKeysAreScopedToChatAndAuthor(kind: StoreKind) async throws {
        try await kind.withStore { (store: any ChatStore) async throws in
            guard case .created(let first) = try await store.appendMessage(Self.draft("hello", key: "k1")) else {
                Issue.record("first post not created")
                return
            }
            #expect(first.idempotencyKey == "k1")
            #expect(try await store.appendMessage(Self.draft("hello", key: "k1")) == .replayed(first))
            #expect(try await store.appendMessage(Self.draft("changed", key: "k1")) == .keyReused(first))
            // The same key from another author, or in another chat, is another message.
            guard
                case .created(let bobs) = try await store.appendMessage(Self.draft("hello", author: "bob", key: "k1")),
                case .created(let elsewhere) = try await store.appendMessage(
                    Self.draft("hello", chat: Self.otherChat, key: "k1"))
            else {
                Issue.record("same key, other scope, not created")
                return
            }
            #expect(Set([first.id, bobs.id, elsewhere.id]).count == 3)
            // Keyless posts never collide.
            guard case .created = try await store.appendMessage(Self.draft("hello")),
                case .created = try await store.appendMessage(Self.draft("hello"))
            else {
                Issue.record("keyless posts collided")
                return
            }
            #expect(try await store.messages(in: Self.chat, before: nil, limit: 10).count == 4)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func concurrentPostsWithOneKeyStoreOneMessage(kind: StoreKind) async throws {
        try await kind.withStore { (store: any ChatStore) async throws in
            let outcomes = await withTaskGroup(of: MessageAppend?.self) { group in
                for _ in 0..<12 {
                    group.addTask { try? await store.appendMessage(Self.draft("once", key: "same")) }
                }
                var all: [MessageAppend?] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            var created = 0
            var ids: Set<MessageID> = []
            for outcome in outcomes {
                switch outcome {
                case .created(let message)?: created += 1; ids.insert(message.id)
                case .replayed(let message)?: ids.insert(message.id)
                default: Issue.record("unexpected outcome \(String(describing: outcome))")
                }
            }
            #expect(created == 1)
            #expect(ids.count == 1)
            #expect(try await store.messages(in: Self.chat, before: nil, limit: 50).count == 1)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func pagesGoNewestFirstBelowTheCursor(kind: StoreKind) async throws {
        try await kind.withStore { (store: any ChatStore) async throws in
            for index in 0..<7 { _ = try await store.appendMessage(Self.draft("m\(index)")) }
            _ = try await store.appendMessage(Self.draft("other chat", chat: Self.otherChat))
            var seen: [String] = []
            var cursor: MessageID?
            for _ in 0..<10 {
                let page = try await store.messages(in: Self.chat, before: cursor, limit: 3)
                seen += page.map(\.text)
                guard page.count == 3, let last = page.last else { break }
                cursor = last.id
            }
            #expect(seen == (0..<7).reversed().map { "m\($0)" })
        }
    }

    @Test(arguments: StoreKind.allCases)
    func dataSurvivesReopeningAndMigrationsRunOnce(kind: StoreKind) async throws {
        let location = try await kind.newLocation()
        defer { location.remove() }
        let first = try await location.open()
        let chat = Chat(id: Self.chat, title: nil, createdBy: "alice", createdAt: Self.t0)
        #expect(
            try await first.store.createChat(
                chat, members: [ChatMember(chatID: Self.chat, userID: "alice", addedBy: "alice", addedAt: Self.t0)]))
        _ = try await first.store.appendMessage(Self.draft("before restart", key: "r1"))
        await first.close()

        let second = try await location.open()
        #expect(try await second.store.chat(Self.chat) == chat)
        #expect(try await second.store.messages(in: Self.chat, before: nil, limit: 5).map(\.text) == ["before restart"])
        guard case .replayed = try await second.store.appendMessage(Self.draft("before restart", key: "r1")) else {
            Issue.record("the idempotency key did not survive the restart")
            await second.close()
            return
        }
        switch second.store {
        case let sqlite as SQLiteChatStore:
            #expect(try await sqlite.appliedMigrations() == ["v1-chats-members-messages"])
            #expect(try await sqlite.journalMode() == "wal")
        case let postgres as PostgresChatStore:
            #expect(try await postgres.appliedMigrations() == [1])
        default:
            Issue.record("unknown store type")
        }
        await second.close()
    }

    /// Two instances starting at once on an empty database: the advisory lock lets one migrate
    /// while the other waits, then both work.
    @Test func postgresInstancesStartingTogetherMigrateOnce() async throws {
        let location = try await StoreKind.postgres.newLocation()
        async let a = location.open()
        async let b = location.open()
        let (first, second) = try await (a, b)
        _ = try await first.store.appendMessage(Self.draft("from a"))
        #expect(try await second.store.messages(in: Self.chat, before: nil, limit: 5).map(\.text) == ["from a"])
        #expect(try await (second.store as? PostgresChatStore)?.appliedMigrations() == [1])
        await first.close()
        await second.close()
    }

    /// The HTTP server runs its handlers in tasks that prefer the I/O loop as their executor, so
    /// a store's nonisolated code runs on the loop thread until it hands work off. SQLite blocks,
    /// so each of its statements must run elsewhere; the store asserts it (`assert` in its read
    /// and write paths: a statement run on a loop thread stops this debug-built test run).
    @Test func sqliteCallsMadeOnALoopRunOffIt() async throws {
        let loop = EventLoop(name: "store-caller")
        defer { loop.stop() }
        try await StoreKind.sqlite.withStore { (store: any ChatStore) async throws in
            let texts = try await Task(executorPreference: loop) {
                loop.preconditionInLoop()
                let chat = Chat(id: Self.chat, title: "loop", createdBy: "alice", createdAt: Self.t0)
                let creator = ChatMember(chatID: chat.id, userID: "alice", addedBy: "alice", addedAt: Self.t0)
                _ = try await store.createChat(chat, members: [creator])
                _ = try await store.appendMessage(Self.draft("from the loop"))
                return try await store.messages(in: chat.id, before: nil, limit: 5).map(\.text)
            }.value
            #expect(texts == ["from the loop"])
        }
    }
}
