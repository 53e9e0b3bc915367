import ChatRuntime
import Foundation
import Testing

@testable import Actors

/// Parsing of the stream commands' replies and of batch entries, without Redis.
@Suite("Stream replies")
struct StreamRepliesTests {
    static func bulk(_ text: String) -> RESPValue { .bulkString(Array(text.utf8)) }

    static func entry(_ id: String, _ fields: [(String, String)]) -> RESPValue {
        .array([bulk(id), .array(fields.flatMap { [bulk($0.0), bulk($0.1)] })])
    }

    static let batchFields = [
        ("run", "full-20261125T030000Z-ab12"), ("kind", "full"), ("fence", "4"), ("number", "12"),
        ("chats", "chat-1 chat-2 chat-3"),
    ]

    @Test func readReplyListsEveryEntryWithItsFields() {
        let reply = RESPValue.array([
            .array([
                Self.bulk("participants:v2:{sync}:batches"),
                .array([
                    Self.entry("1-0", Self.batchFields), Self.entry("1-1", [("run", "x")]),
                ]),
            ])
        ])
        let entries = StreamReplies.entries(fromRead: reply)
        #expect(entries.map(\.id) == ["1-0", "1-1"])
        #expect(entries[0].fields["chats"] == "chat-1 chat-2 chat-3")
        #expect(StreamReplies.entries(fromRead: .null).isEmpty)
    }

    @Test func claimReplyOfRedis7SeparatesDeletedEntries() throws {
        let reply = RESPValue.array([
            Self.bulk("5-0"), .array([Self.entry("3-0", Self.batchFields)]), .array([Self.bulk("2-0")]),
        ])
        let claim = try #require(StreamReplies.claim(reply))
        #expect(claim.cursor == "5-0")
        #expect(claim.entries.map(\.id) == ["3-0"])
        #expect(claim.deleted == ["2-0"])
    }

    @Test func claimReplyOfRedis6ReportsNilEntriesAsDeleted() throws {
        let reply = RESPValue.array([
            Self.bulk("0-0"), .array([.array([Self.bulk("2-0"), .null]), Self.entry("3-0", Self.batchFields)]),
        ])
        let claim = try #require(StreamReplies.claim(reply))
        #expect(claim.cursor == "0-0")
        #expect(claim.entries.map(\.id) == ["3-0"])
        #expect(claim.deleted == ["2-0"])
    }

    @Test func batchDecodesFromItsEntry() throws {
        let entry = StreamEntry(id: "9-1", fields: Dictionary(uniqueKeysWithValues: Self.batchFields))
        let batch = try #require(BatchStream.batch(from: entry, claimed: true))
        #expect(batch.runID.rawValue == "full-20261125T030000Z-ab12")
        #expect(batch.number == 12)
        #expect(batch.chats.map(\.rawValue) == ["chat-1", "chat-2", "chat-3"])
        #expect(batch.delivery == StreamDelivery(entryID: "9-1", fence: 4, kind: .full, claimed: true))
    }

    @Test(arguments: [
        ("chats", "chat-1 {bad}"), ("chats", ""), ("fence", "x"), ("kind", "weekly"), ("number", ""),
    ])
    func entriesThatAreNotBatchesAreRefused(field: String, value: String) {
        var fields = Dictionary(uniqueKeysWithValues: Self.batchFields)
        fields[field] = value
        #expect(BatchStream.batch(from: StreamEntry(id: "1-0", fields: fields), claimed: false) == nil)
    }

    @Test func groupInfoAndPendingSummaryAreRead() throws {
        let groups = RESPValue.array([
            .array([
                Self.bulk("name"), Self.bulk("other"), Self.bulk("consumers"), .integer(9),
            ]),
            .array([
                Self.bulk("name"), Self.bulk("batchers"), Self.bulk("consumers"), .integer(3),
                Self.bulk("pending"), .integer(2), Self.bulk("last-delivered-id"), Self.bulk("7-0"),
                Self.bulk("entries-read"), .integer(10), Self.bulk("lag"), .integer(4),
            ]),
        ])
        let group = try #require(StreamReplies.group(named: "batchers", in: groups))
        #expect(group == StreamReplies.GroupInfo(consumers: 3, pending: 2, lastDeliveredID: "7-0", lag: 4))
        let nilLag = RESPValue.array([.array([Self.bulk("name"), Self.bulk("batchers"), Self.bulk("lag"), .null])])
        #expect(StreamReplies.group(named: "batchers", in: nilLag)?.lag == nil)

        let pending = RESPValue.array([
            .integer(3), Self.bulk("1-0"), Self.bulk("4-0"),
            .array([.array([Self.bulk("a"), Self.bulk("2")]), .array([Self.bulk("b"), Self.bulk("1")])]),
        ])
        let summary = try #require(StreamReplies.pendingByConsumer(pending))
        #expect(summary.total == 3)
        #expect(summary.byConsumer == ["a": 2, "b": 1])
        let empty = RESPValue.array([.integer(0), .null, .null, .null])
        #expect(StreamReplies.pendingByConsumer(empty)?.total == 0)
    }

    @Test func consumersAreReadWithTheirIdleTime() {
        let reply = RESPValue.array([
            .array([
                Self.bulk("name"), Self.bulk("a"), Self.bulk("pending"), .integer(1), Self.bulk("idle"), .integer(50),
            ]),
            .array([
                Self.bulk("name"), Self.bulk("b"), Self.bulk("pending"), .integer(0), Self.bulk("idle"),
                .integer(90_000),
            ]),
        ])
        let consumers = StreamReplies.consumers(reply)
        #expect(consumers.map(\.name) == ["a", "b"])
        #expect(consumers.map(\.idleMilliseconds) == [50, 90_000])
    }

    @Test func runRecordReadsBackAsASyncRun() throws {
        let fields = [
            "id": "manual-20261125T120000Z-0001", "kind": "manual_full", "trigger": "admin", "state": "running",
            "started_at": "2026-11-25T12:00:00.000Z", "fence": "5", "leader": "b-2", "adoptions": "1",
            "cursor": "300", "producer_done": "0", "pages_read": "3", "chats_considered": "300", "chats_planned": "300",
            "chats_refreshed": "120", "batches_planned": "30", "batches_done": "12", "batches_failed": "0",
            "errors_total": "3", "failure": "", "joined_requests": "2",
        ]
        let record = try #require(
            SharedRunRecord(
                fields: fields,
                errorLines: ["2026-11-25T12:00:02.000Z newest", "2026-11-25T12:00:01.000Z oldest: with spaces"]))
        #expect(record.cursor == "300")
        #expect(!record.producerDone)
        let run = record.run
        #expect(run.kind == .manualFull)
        #expect(run.state == .running)
        #expect(run.pagesRead == 3)
        #expect(run.counts.chatsRefreshed == 120)
        #expect(run.counts.batchesPlanned == 30)
        #expect(run.fence == 5)
        #expect(run.leader == "b-2")
        #expect(run.adoptions == 1)
        #expect(run.failure == nil)
        #expect(run.joinedRequests == 2)
        #expect(run.errors.map(\.message) == ["oldest: with spaces", "newest"])
        #expect(run.errorsTotal == 3)
        #expect(SharedRunRecord(fields: [:]) == nil)
        #expect(SharedRunRecord(fields: ["id": "x", "kind": "full"]) == nil)
    }

    @Test func backlogLimitGrowsWithInstancesButStaysBelowTheStreamLength() {
        var settings = CoordinationSettings(instanceID: "a")
        #expect(settings.backlogLimit(liveInstances: 1, holdLimit: 8) == 16)
        #expect(settings.backlogLimit(liveInstances: 3, holdLimit: 8) == 48)
        settings.streamMaxLength = 40
        #expect(settings.backlogLimit(liveInstances: 3, holdLimit: 8) == 20)
        settings.backlogPerInstance = 2
        #expect(settings.backlogLimit(liveInstances: 0, holdLimit: 8) == 2)
    }
}
