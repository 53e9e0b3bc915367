import PostgresChatStore
import Testing

@testable import ChatService

@Suite("Chat configuration")
struct ChatConfigurationTests {
    @Test func defaultsAreSQLiteInTheWorkingDirectory() throws {
        let chat = try ServiceConfiguration(environment: [:]).chat
        #expect(chat.store == .sqlite(path: "./chat-service.sqlite3"))
        #expect(chat.messageMaxBytes == 4096)
        #expect(chat.participantsTimeout == .seconds(2))
    }

    @Test func postgresTakesItsURL() throws {
        let chat = try ServiceConfiguration(environment: [
            "CHAT_STORE": "postgres",
            "CHAT_POSTGRES_URL": "postgres://chat:s%40cret@db.internal:6543/chats?sslmode=require",
        ]).chat
        #expect(
            chat.store
                == .postgres(
                    PostgresURL(
                        host: "db.internal", port: 6543, username: "chat", password: "s@cret", database: "chats",
                        requireTLS: true)))
        let summary = Dictionary(
            try ServiceConfiguration(environment: [
                "CHAT_STORE": "postgres", "CHAT_POSTGRES_URL": "postgres://chat:hunter2@db/chats",
            ]).redactedSummary.map { ($0.name, $0.value) }
        ) { first, _ in first }
        #expect(summary["CHAT_POSTGRES_URL"] == "postgres://chat:***@db:5432/chats")
    }

    @Test(arguments: [
        (["CHAT_STORE": "mysql"], "CHAT_STORE"),
        (["CHAT_STORE": "postgres"], "CHAT_POSTGRES_URL"),
        (["CHAT_STORE": "postgres", "CHAT_POSTGRES_URL": "mysql://u@h/db"], "CHAT_POSTGRES_URL"),
        (["CHAT_STORE": "postgres", "CHAT_POSTGRES_URL": "postgres://h/db"], "CHAT_POSTGRES_URL"),
        (["CHAT_STORE": "postgres", "CHAT_POSTGRES_URL": "postgres://u@h/"], "CHAT_POSTGRES_URL"),
        (
            ["CHAT_STORE": "postgres", "CHAT_POSTGRES_URL": "postgres://u@h/db?sslmode=verify-full"],
            "CHAT_POSTGRES_URL"
        ),
        (["CHAT_MESSAGE_MAX_BYTES": "0"], "CHAT_MESSAGE_MAX_BYTES"),
        (["CHAT_MESSAGE_MAX_BYTES": "lots"], "CHAT_MESSAGE_MAX_BYTES"),
        (["CHAT_PARTICIPANTS_TIMEOUT": "soon"], "CHAT_PARTICIPANTS_TIMEOUT"),
    ])
    func badValuesNameTheVariable(environment: [String: String], variable: String) {
        #expect {
            _ = try ServiceConfiguration(environment: environment)
        } throws: { error in
            (error as? ConfigurationError)?.variable == variable
        }
    }

    @Test func aBadPostgresURLIsRedactedInTheError() {
        do {
            _ = try ServiceConfiguration(environment: [
                "CHAT_STORE": "postgres", "CHAT_POSTGRES_URL": "postgres://u:hunter2@h",
            ])
            Issue.record("accepted a URL without a database")
        } catch {
            #expect(!error.description.contains("hunter2"))
            #expect(error.variable == "CHAT_POSTGRES_URL")
        }
    }
}
