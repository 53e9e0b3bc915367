import ChatRuntime
import Foundation

/// The runs every instance sees: records, admission, tick claims, fenced appends to the batch
/// stream and batch settlement, all as scripts on Redis (see ``CoordinationScripts``). Holds no
/// state of its own; every call is one round trip (or one pipeline) through the supervisor, and
/// throws when Redis is not ready.
struct SharedRuns: Sendable {
    let supervisor: RedisSupervisor
    let settings: CoordinationSettings
    /// Errors kept per run.
    let errorLimit: Int

    private var retentionSeconds: String { String(max(60, settings.retention.components.seconds)) }

    // MARK: Creating runs

    /// A scheduled instant to claim with the run it starts.
    struct Tick: Sendable, Hashable {
        var slot: CoordinationKeys.TickSlot
        var due: Date
        /// The claim fails unless `due` is at least this far past the last claimed instant.
        var minimumGap: Duration
    }

    enum Creation: Sendable, Hashable {
        case started(RunID)
        case joined(RunID)
        case skipped(coveredBy: RunID)
        /// The tick was claimed before (by this or another leader).
        case alreadyClaimed
        /// `lease` is not the lock's holder any more.
        case notLeader
        /// A run with this id exists; try another id.
        case collision
    }

    /// Records run `id` as queued, or joins or skips for the run going. With a `lease`, only
    /// while it holds the lock; with a `tick`, only when the tick was not claimed yet, and the
    /// claim is made in the same step.
    ///
    /// The runs going are read first, so that the script names their records in `KEYS`; when
    /// they changed before the script ran, it says so and they are read again (a few times at
    /// most: runs start and end seconds apart, not microseconds).
    func create(
        _ id: RunID, kind: SyncRun.Kind, trigger: String, at now: Date, lease: LeaderLease?, tick: Tick?
    ) async throws -> Creation {
        for _ in 0..<Self.createAttempts {
            let active = Dictionary(try await activeRuns(), uniquingKeysWith: { first, _ in first })
            let command = LeaderElector.eval(
                CoordinationScripts.createRun,
                keys: [
                    CoordinationKeys.leader,
                    tick.map { CoordinationKeys.tick($0.slot) } ?? CoordinationKeys.tick(.full),
                    CoordinationKeys.active(.full), CoordinationKeys.active(.interval), CoordinationKeys.run(id),
                    CoordinationKeys.runs,
                    active[.full].map(CoordinationKeys.run) ?? CoordinationKeys.active(.full),
                    active[.interval].map(CoordinationKeys.run) ?? CoordinationKeys.active(.interval),
                ],
                arguments: [
                    lease?.value ?? "", tick.map { String(Self.milliseconds($0.due)) } ?? "",
                    tick.map { String(LeaderElector.milliseconds($0.minimumGap)) } ?? "0",
                    id.rawValue, kind.rawValue, trigger, String(Self.milliseconds(now)),
                    ISO8601Timestamp.string(from: now), retentionSeconds, String(settings.runIndexLimit),
                    active[.full]?.rawValue ?? "", active[.interval]?.rawValue ?? "",
                ])
            let reply = try await supervisor.send(command).array ?? []
            let other = reply.dropFirst().first?.string.map(RunID.init(rawValue:))
            switch reply.first?.string {
            case "changed": continue
            case "started": return .started(id)
            case "joined": return other.map(Creation.joined) ?? .collision
            case "skipped": return other.map(Creation.skipped) ?? .collision
            case "already_claimed": return .alreadyClaimed
            case "not_leader": return .notLeader
            default: return .collision
            }
        }
        return .collision
    }

    /// Reads of the runs going before ``create(_:kind:trigger:at:lease:tick:)`` gives up.
    static let createAttempts = 5

    // MARK: Producing runs

    /// The runs going, at most one per slot.
    func activeRuns() async throws -> [(slot: CoordinationKeys.ActiveSlot, id: RunID)] {
        let reply = try await supervisor.send(RedisCommand("MGET", CoordinationKeys.allActive))
        return zip(CoordinationKeys.ActiveSlot.allCases, reply.array ?? []).compactMap { slot, value in
            value.string.map { (slot, RunID(rawValue: $0)) }
        }
    }

    enum Adoption: Sendable, Hashable {
        /// The run is this leader's to produce now; `previousFence` is 0 for a run nobody
        /// produced yet.
        case adopted(SharedRunRecord, previousFence: Int64)
        case notLeader
        /// The record expired; its active key was cleared.
        case gone
        /// The run ended.
        case ended
        /// Its producer is done; the batches are still being processed.
        case settling
        /// Its producer finished long ago and batches never came back: failed.
        case reaped
    }

    /// Takes over the production of run `id`, active in `slot`, under `lease`.
    func adopt(
        _ id: RunID, slot: CoordinationKeys.ActiveSlot, lease: LeaderLease, at now: Date
    ) async throws -> Adoption {
        let stuckBefore = now.addingTimeInterval(-settings.effectiveStuckRunAfter.timeInterval)
        let slotKey = CoordinationKeys.active(slot)
        let command = LeaderElector.eval(
            CoordinationScripts.adoptRun,
            keys: [CoordinationKeys.leader, CoordinationKeys.run(id), slotKey],
            arguments: [
                lease.value, String(lease.fence), settings.instanceID, id.rawValue, String(Self.milliseconds(now)),
                String(Self.milliseconds(stuckBefore)), ISO8601Timestamp.string(from: now),
            ])
        let reply = try await supervisor.send(command).array ?? []
        switch reply.first?.string {
        case "adopted":
            guard reply.count == 3, let flat = reply[2].array,
                let record = SharedRunRecord(fields: StreamReplies.dictionary(flat))
            else { return .gone }
            return .adopted(record, previousFence: reply[1].string.flatMap { Int64($0) } ?? 0)
        case "not_leader": return .notLeader
        case "ended": return .ended
        case "settling": return .settling
        case "reaped": return .reaped
        default: return .gone
        }
    }

    /// Listing progress booked with an append.
    struct Progress: Sendable, Hashable {
        var pagesRead = 0
        var chatsConsidered = 0
        var idsRejected = 0
        /// Full runs: the next page's token once this append is in; nil leaves the cursor.
        var cursor: String?
    }

    enum Append: Sendable, Hashable {
        /// In the stream; `backlog` batches of the run are not accounted for yet, and the stream
        /// holds `streamLength` entries.
        case appended(state: SyncRun.State, backlog: Int, streamLength: Int)
        case notLeader
        /// The run is not this leader's (another adopted it) or not going.
        case notOwner
    }

    /// Appends `batches` of run `id` to the stream, fenced by `lease`.
    func append(
        _ id: RunID, kind: SyncRun.Kind, lease: LeaderLease, batches: [[ChatID]], progress: Progress, final: Bool,
        at now: Date
    ) async throws -> Append {
        let chats = batches.reduce(0) { $0 + $1.count }
        let command = LeaderElector.eval(
            CoordinationScripts.append,
            keys: [
                CoordinationKeys.leader, CoordinationKeys.run(id), CoordinationKeys.batches,
                CoordinationKeys.active(.init(kind)),
            ],
            arguments: [
                lease.value, String(lease.fence), id.rawValue, kind.rawValue, String(settings.streamMaxLength),
                progress.cursor == nil ? "0" : "1", progress.cursor ?? "", final ? "1" : "0",
                String(progress.pagesRead), String(progress.chatsConsidered), String(progress.idsRejected),
                ISO8601Timestamp.string(from: now), String(Self.milliseconds(now)), String(chats),
                CoordinationKeys.group,
            ] + batches.map { $0.map(\.rawValue).joined(separator: " ") })
        let reply = try await supervisor.send(command).array ?? []
        switch reply.first?.string {
        case "not_leader": return .notLeader
        case "not_owner": return .notOwner
        case let state?:
            let numbers = reply.dropFirst().map { Int($0.int ?? 0) }
            return .appended(
                state: SyncRun.State(rawValue: state) ?? .running, backlog: numbers.first ?? 0,
                streamLength: numbers.dropFirst().first ?? 0)
        case nil:
            return .notOwner
        }
    }

    /// Batches of run `id` planned but not yet accounted for.
    func backlog(of id: RunID) async throws -> Int {
        let reply = try await supervisor.send(
            RedisCommand(
                "HMGET",
                [
                    CoordinationKeys.run(id), "batches_planned", "batches_done", "batches_failed", "batches_skipped",
                ]))
        let values = (reply.array ?? []).map { $0.int ?? 0 }
        guard values.count == 4 else { return 0 }
        return Int(values[0] - values[1] - values[2] - values[3])
    }

    /// Trims what the group acknowledged (never an unprocessed batch); the stream's length after.
    func trimAcknowledged() async throws -> Int {
        let reply = try await supervisor.send(
            LeaderElector.eval(
                CoordinationScripts.trim, keys: [CoordinationKeys.batches], arguments: [CoordinationKeys.group]))
        return Int(reply.int ?? 0)
    }

    /// How a producer ended.
    typealias ProducerEnd = SharedRunBooks.ProducerEnd

    /// Marks run `id`'s production ended, fenced by `lease`; the run's state afterwards, or nil
    /// when the lease or the run is not this producer's any more.
    func finishProducer(
        _ id: RunID, kind: SyncRun.Kind, lease: LeaderLease, end: ProducerEnd, failure: String?, at now: Date
    ) async throws -> SyncRun.State? {
        let command = LeaderElector.eval(
            CoordinationScripts.finishProducer,
            keys: [CoordinationKeys.leader, CoordinationKeys.run(id), CoordinationKeys.active(.init(kind))],
            arguments: [
                lease.value, String(lease.fence), id.rawValue, end.rawValue, failure ?? "",
                ISO8601Timestamp.string(from: now), String(Self.milliseconds(now)),
            ])
        let reply = try await supervisor.send(command).array ?? []
        guard reply.first?.string == "ok" else { return nil }
        return reply.dropFirst().first?.string.flatMap(SyncRun.State.init(rawValue:))
    }

    /// Adds an error line to run `id`.
    func recordError(_ id: RunID, _ message: String, at now: Date) async throws {
        _ = try await supervisor.send(
            LeaderElector.eval(
                CoordinationScripts.recordError, keys: [CoordinationKeys.run(id), CoordinationKeys.runErrors(id)],
                arguments: [SharedRunRecord.errorLine(message, at: now), String(errorLimit), retentionSeconds]))
    }

    // MARK: Settling batches

    enum Settlement: Sendable, Hashable {
        /// Acknowledged and booked; the run's state afterwards.
        case counted(SyncRun.State)
        /// Acknowledged before (processed twice); not booked again.
        case duplicate
        /// Acknowledged; its run's record is gone.
        case unknownRun
    }

    /// Acknowledges the stream entry `outcome` came from and books the outcome on its run, once.
    func settle(_ outcome: BatchOutcome, delivery: StreamDelivery, at now: Date) async throws -> Settlement {
        Self.settlement(try await supervisor.send(settleCommand(outcome, delivery: delivery, at: now)))
    }

    /// ``settle(_:delivery:at:)`` for each of `outcomes` (each with its delivery), in order, in
    /// one pipeline: one round trip however many batches finished meanwhile.
    func settle(_ outcomes: [BatchOutcome], at now: Date) async throws -> [Settlement] {
        let commands = outcomes.compactMap { outcome in
            outcome.delivery.map { settleCommand(outcome, delivery: $0, at: now) }
        }
        precondition(commands.count == outcomes.count, "every outcome settled needs its stream delivery")
        let replies = try await supervisor.pipeline(commands)
        if let refusal = replies.first(where: { $0.errorMessage != nil })?.errorMessage {
            throw RedisError(code: .server, message: refusal)
        }
        return replies.map(Self.settlement)
    }

    private func settleCommand(_ outcome: BatchOutcome, delivery: StreamDelivery, at now: Date) -> RedisCommand {
        let id = outcome.runID
        return LeaderElector.eval(
            CoordinationScripts.settleBatch,
            keys: [
                CoordinationKeys.batches, CoordinationKeys.run(id), CoordinationKeys.runErrors(id),
                CoordinationKeys.active(.init(delivery.kind)),
            ],
            arguments: [
                CoordinationKeys.group, delivery.entryID, outcome.result.rawValue, String(outcome.chatsRefreshed),
                String(outcome.chatsNotFound), String(outcome.chatsFailed), id.rawValue,
                ISO8601Timestamp.string(from: now), String(Self.milliseconds(now)), String(errorLimit),
                retentionSeconds,
            ] + outcome.errors.prefix(errorLimit).map { SharedRunRecord.errorLine($0, at: now) })
    }

    private static func settlement(_ reply: RESPValue) -> Settlement {
        let parts = reply.array ?? []
        switch parts.first?.string {
        case "counted":
            return .counted(parts.dropFirst().first?.string.flatMap(SyncRun.State.init(rawValue:)) ?? .running)
        case "duplicate": return .duplicate
        default: return .unknownRun
        }
    }

    // MARK: Reading runs

    /// Run `id` as recorded, with its errors; nil when there is no such record.
    func run(_ id: RunID) async throws -> SyncRun? {
        try await record(id)?.run
    }

    func record(_ id: RunID) async throws -> SharedRunRecord? {
        let replies = try await supervisor.pipeline([
            RedisCommand("HGETALL", [CoordinationKeys.run(id)]),
            RedisCommand("LRANGE", [CoordinationKeys.runErrors(id), "0", "-1"]),
        ])
        guard replies.count == 2, let flat = replies[0].array else { return nil }
        return SharedRunRecord(
            fields: StreamReplies.dictionary(flat), errorLines: (replies[1].array ?? []).compactMap(\.string))
    }

    /// The most recent runs, newest first.
    func recent(limit: Int) async throws -> [SyncRun] {
        let ids =
            try await supervisor.send(
                RedisCommand("ZREVRANGE", [CoordinationKeys.runs, "0", String(max(0, limit - 1))])
            )
            .array?.compactMap(\.string) ?? []
        guard !ids.isEmpty else { return [] }
        var commands: [RedisCommand] = []
        for id in ids.map(RunID.init(rawValue:)) {
            commands.append(RedisCommand("HGETALL", [CoordinationKeys.run(id)]))
            commands.append(RedisCommand("LRANGE", [CoordinationKeys.runErrors(id), "0", "-1"]))
        }
        let replies = try await supervisor.pipeline(commands)
        return stride(from: 0, to: replies.count - 1, by: 2).compactMap { index in
            guard let flat = replies[index].array else { return nil }
            return SharedRunRecord(
                fields: StreamReplies.dictionary(flat),
                errorLines: (replies[index + 1].array ?? []).compactMap(\.string))?.run
        }
    }

    // MARK: Helpers

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }
}
