import ChatRuntime
import Foundation

/// The shared batch stream `participants:v2:{sync}:batches` and its consumer group `batchers`:
/// reading without `BLOCK` on the shared connection (``BlockingStreamReader`` blocks on its own), claiming what dead
/// instances left pending, and what the status route shows of both.
struct BatchStream: Sendable {
    let supervisor: RedisSupervisor
    let settings: CoordinationSettings

    /// `XGROUP CREATE key batchers 0 MKSTREAM`; an existing group (`BUSYGROUP`) is fine. From
    /// `0`, so a group created after entries were appended still delivers them all.
    func ensureGroup() async throws {
        do {
            _ = try await supervisor.send(
                RedisCommand(
                    "XGROUP",
                    [
                        "CREATE", CoordinationKeys.batches, CoordinationKeys.group, "0", "MKSTREAM",
                    ]))
        } catch let error as RedisError where error.code == .server && error.message.hasPrefix("BUSYGROUP") {
            return
        }
    }

    /// What one poll read.
    struct Read: Sendable {
        /// The current fence (0 when none was ever issued).
        var fence: Int64
        var entries: [StreamEntry]
        /// The group does not exist (Redis lost it); create it and read again.
        var noGroup: Bool
    }

    /// `GET fence` and `XREADGROUP GROUP batchers <me> COUNT n STREAMS key >`, one pipeline.
    func read(count: Int) async throws -> Read {
        let replies = try await supervisor.pipeline([
            RedisCommand("GET", [CoordinationKeys.fence]),
            RedisCommand(
                "XREADGROUP",
                [
                    "GROUP", CoordinationKeys.group, settings.instanceID, "COUNT", String(max(1, count)),
                    "STREAMS", CoordinationKeys.batches, ">",
                ]),
        ])
        return try Self.read(from: replies)
    }

    /// The replies of `GET fence` and an `XREADGROUP`, pipelined in that order.
    static func read(from replies: [RESPValue]) throws -> Read {
        let fence = replies.first?.int ?? 0
        let reply = replies.count > 1 ? replies[1] : .null
        if let message = reply.errorMessage {
            if message.hasPrefix("NOGROUP") { return Read(fence: fence, entries: [], noGroup: true) }
            throw RedisError(code: .server, message: message)
        }
        return Read(fence: fence, entries: StreamReplies.entries(fromRead: reply), noGroup: false)
    }

    /// `XAUTOCLAIM key batchers <me> <min idle> <cursor> COUNT n`.
    func claim(count: Int, cursor: String) async throws -> StreamReplies.Claim {
        let reply = try await supervisor.send(
            RedisCommand(
                "XAUTOCLAIM",
                [
                    CoordinationKeys.batches, CoordinationKeys.group, settings.instanceID,
                    String(LeaderElector.milliseconds(settings.claimMinIdle)), cursor, "COUNT", String(max(1, count)),
                ]))
        return StreamReplies.claim(reply) ?? StreamReplies.Claim(cursor: "0-0", entries: [], deleted: [])
    }

    /// Acknowledges an entry without booking anything (an entry that is not a batch).
    func acknowledge(_ entryID: String) async throws {
        _ = try await supervisor.send(
            RedisCommand("XACK", [CoordinationKeys.batches, CoordinationKeys.group, entryID]))
    }

    /// Consumers of the group that read or claimed within the claim idle time: the instances
    /// alive to share a run's backlog.
    func liveConsumers() async throws -> Int {
        let reply = try await supervisor.send(
            RedisCommand(
                "XINFO",
                [
                    "CONSUMERS", CoordinationKeys.batches, CoordinationKeys.group,
                ]))
        let idleLimit = LeaderElector.milliseconds(settings.claimMinIdle)
        return StreamReplies.consumers(reply).filter { $0.idleMilliseconds < idleLimit }.count
    }

    /// The lock holder and the current fence, per Redis.
    func leader() async throws -> CoordinationStatus.Leader? {
        let replies = try await supervisor.pipeline([
            RedisCommand("GET", [CoordinationKeys.leader]), RedisCommand("GET", [CoordinationKeys.fence]),
        ])
        guard let value = replies.first?.string else { return nil }
        let instance = value.lastIndex(of: ":").map { String(value[..<$0]) } ?? value
        return CoordinationStatus.Leader(instanceID: instance, fence: replies.count > 1 ? replies[1].int : nil)
    }

    /// Length, lag and pending entries of the stream and group.
    func status() async throws -> CoordinationStatus.Stream {
        let replies = try await supervisor.pipeline([
            RedisCommand("XLEN", [CoordinationKeys.batches]),
            RedisCommand("XINFO", ["GROUPS", CoordinationKeys.batches]),
            RedisCommand("XPENDING", [CoordinationKeys.batches, CoordinationKeys.group]),
        ])
        let group = replies.count > 1 ? StreamReplies.group(named: CoordinationKeys.group, in: replies[1]) : nil
        let pending = replies.count > 2 ? StreamReplies.pendingByConsumer(replies[2]) : nil
        return CoordinationStatus.Stream(
            key: CoordinationKeys.batches, length: Int(replies.first?.int ?? 0), maxLength: settings.streamMaxLength,
            groupExists: group != nil, consumers: group?.consumers ?? 0, lag: group?.lag,
            pending: pending?.total ?? group?.pending ?? 0, lastDeliveredID: group?.lastDeliveredID,
            pendingByConsumer: pending?.byConsumer ?? [:])
    }

    /// The batch an entry holds; nil when it is not one (missing fields, invalid chat ids).
    static func batch(from entry: StreamEntry, claimed: Bool) -> SyncBatch? {
        let fields = entry.fields
        guard let run = fields["run"], !run.isEmpty,
            let kind = fields["kind"].flatMap(SyncRun.Kind.init(rawValue:)),
            let fence = fields["fence"].flatMap({ Int64($0) }),
            let number = fields["number"].flatMap({ Int($0) }),
            let text = fields["chats"]
        else { return nil }
        var chats: [ChatID] = []
        for part in text.split(separator: " ") {
            guard let chat = ChatID(validating: String(part)) else { return nil }
            chats.append(chat)
        }
        guard !chats.isEmpty else { return nil }
        return SyncBatch(
            runID: RunID(rawValue: run), number: number, chats: chats,
            delivery: StreamDelivery(entryID: entry.id, fence: fence, kind: kind, claimed: claimed))
    }
}
