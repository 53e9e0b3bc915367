import ChatRuntime

/// The per-chat refresh lock shared by the instances (`participants:v1:{<chat>}:lock`): the
/// instance that takes it calls upstream, the others wait and read the result from Redis.
///
/// Every operation degrades instead of failing: Redis not ready or refusing the command reads
/// as ``Acquisition/unavailable`` or as nothing seen, and the caller fetches by itself.
struct PeerRefreshLock: Sendable {
    let supervisor: RedisSupervisor
    let coordination: InstanceCoordination

    enum Acquisition: Sendable, Hashable {
        /// Ours until released or expired; `token` releases it. `found` is what Redis held
        /// when the lock was taken: a previous holder may have finished just before.
        case acquired(token: String, found: Found)
        /// Another instance refreshes the chat now.
        case heldByPeer
        /// Redis cannot arbitrate (not ready, refused): fetch without the lock.
        case unavailable(String)
    }

    /// A chat's result in Redis, as seen when the lock was taken.
    struct Found: Sendable, Hashable {
        /// The entry's bytes, if any.
        var entry: [UInt8]?
        /// The not-found marker exists.
        var notFound: Bool
    }

    /// What a waiter sees of a chat in Redis.
    struct PeerView: Sendable, Hashable {
        /// The entry's bytes, if any.
        var entry: [UInt8]?
        /// The not-found marker exists.
        var notFound: Bool
        /// The lock is still held (by anyone).
        var lockHeld: Bool
    }

    /// `SET <lock> <token> NX PX <ttl>` and, when it took the lock, the chat's entry and
    /// not-found marker, in one script (``ParticipantsKeys/acquireRefreshLockScript``).
    func acquire(_ chat: ChatID) async -> Acquisition {
        let token = "\(coordination.instanceID):\(UInt64.random(in: 0...UInt64.max))"
        let milliseconds = max(1, Int64(coordination.refreshLockTTL.timeInterval * 1000))
        let reply: RESPValue
        do {
            reply = try await supervisor.send(
                RedisCommand(
                    "EVAL",
                    [
                        ParticipantsKeys.acquireRefreshLockScript, "3",
                        ParticipantsKeys.refreshLock(chat), ParticipantsKeys.entry(chat),
                        ParticipantsKeys.notFound(chat),
                        token, String(milliseconds),
                    ]))
        } catch {
            return .unavailable("\(error)")
        }
        guard let fields = reply.array, let taken = fields.first?.int else {
            return .unavailable("unexpected reply to the lock script: \(reply)")
        }
        guard taken == 1 else { return .heldByPeer }
        guard fields.count == 3 else {
            // Ours, but what Redis holds is unknown: as before the script, fetch.
            return .acquired(token: token, found: Found(entry: nil, notFound: false))
        }
        return .acquired(token: token, found: Found(entry: fields[1].bytes, notFound: fields[2].int == 1))
    }

    /// Deletes the lock if it is still ours; failures are left to the TTL.
    func release(_ chat: ChatID, token: String) async {
        _ = try? await supervisor.send(
            RedisCommand(
                "EVAL",
                [
                    ParticipantsKeys.compareAndDeleteScript, "1", ParticipantsKeys.refreshLock(chat), token,
                ]))
    }

    /// The chat's entry, not-found marker and lock in one round trip; nil when Redis cannot answer.
    func peek(_ chat: ChatID) async -> PeerView? {
        guard
            let replies = try? await supervisor.pipeline([
                .get(ParticipantsKeys.entry(chat)),
                RedisCommand("EXISTS", [ParticipantsKeys.notFound(chat)]),
                RedisCommand("EXISTS", [ParticipantsKeys.refreshLock(chat)]),
            ]), replies.count == 3, replies.allSatisfy({ $0.errorMessage == nil })
        else { return nil }
        return PeerView(entry: replies[0].bytes, notFound: replies[1].int == 1, lockHeld: replies[2].int == 1)
    }
}
