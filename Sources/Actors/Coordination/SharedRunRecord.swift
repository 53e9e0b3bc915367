import Foundation

/// A run as recorded in Redis (`participants:v2:{sync}:run:<id>`), read back as a ``SyncRun`` plus
/// what a leader needs to carry on producing it.
struct SharedRunRecord: Sendable, Hashable {
    var run: SyncRun
    /// Full runs: the page token of the next page to list; nil for the first page.
    var cursor: String?
    /// Whether the producer handed over its last batch.
    var producerDone: Bool

    /// Reads a run hash (`HGETALL`) and its error list (`LRANGE`, newest first); nil when the
    /// hash is empty or not a run.
    init?(fields: [String: String], errorLines: [String] = []) {
        guard let id = fields["id"], !id.isEmpty, let kind = fields["kind"].flatMap(SyncRun.Kind.init(rawValue:)),
            let startedAt = fields["started_at"].flatMap(ISO8601Timestamp.date(from:))
        else { return nil }
        var run = SyncRun(id: RunID(rawValue: id), kind: kind, trigger: fields["trigger"] ?? "", startedAt: startedAt)
        run.state = fields["state"].flatMap(SyncRun.State.init(rawValue:)) ?? .running
        run.finishedAt = fields["finished_at"].flatMap(ISO8601Timestamp.date(from:))
        func number(_ name: String) -> Int { fields[name].flatMap { Int($0) } ?? 0 }
        var counts = SyncRun.Counts()
        counts.chatsConsidered = number("chats_considered")
        counts.chatsPlanned = number("chats_planned")
        counts.chatsRefreshed = number("chats_refreshed")
        counts.chatsNotFound = number("chats_not_found")
        counts.chatsFailed = number("chats_failed")
        counts.chatsSkipped = number("chats_skipped")
        counts.batchesPlanned = number("batches_planned")
        counts.batchesDone = number("batches_done")
        counts.batchesDeferred = number("batches_deferred")
        counts.batchesFailed = number("batches_failed")
        counts.batchesSkipped = number("batches_skipped")
        counts.idsRejected = number("ids_rejected")
        run.counts = counts
        run.pagesRead = kind.isFull ? number("pages_read") : nil
        run.errors = errorLines.reversed().map(Self.errorRecord)
        run.errorsTotal = number("errors_total")
        run.failure = fields["failure"].flatMap { $0.isEmpty ? nil : $0 }
        run.joinedRequests = number("joined_requests")
        run.fence = fields["fence"].flatMap { Int64($0) }
        run.leader = fields["leader"].flatMap { $0.isEmpty ? nil : $0 }
        run.adoptions = number("adoptions")
        self.run = run
        cursor = fields["cursor"].flatMap { $0.isEmpty ? nil : $0 }
        producerDone = fields["producer_done"] == "1"
    }

    /// An error line as stored: the ISO 8601 instant, a space, the message.
    static func errorLine(_ message: String, at date: Date) -> String {
        ISO8601Timestamp.string(from: date) + " " + message
    }

    static func errorRecord(_ line: String) -> SyncRun.ErrorRecord {
        let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2, let date = ISO8601Timestamp.date(from: String(parts[0])) {
            return SyncRun.ErrorRecord(at: date, message: String(parts[1]))
        }
        return SyncRun.ErrorRecord(at: Date(timeIntervalSince1970: 0), message: line)
    }
}
