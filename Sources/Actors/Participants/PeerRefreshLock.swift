import Runtime

/// The per-chat refresh lock shared by the instances (`participants:v1:{<chat>}:lock`): the
/// instance that takes it calls upstream, the others wait and read the result from Redis.
///
/// Every operation degrades instead of failing: Redis not ready or refusing the command reads
/// as ``Acquisition/unavailable`` or as nothing seen, and the caller fetches by itself.
struct PeerRefreshLock: Sendable {
    let supervisor: RedisSupervisor
    let coordination: InstanceCoordination

    enum Acquisition: Sendable, Hashable {
        /// Ours until released or expired; `token` releases it.
        case acquired(token: String)
        /// Another instance refreshes the chat now.
        case heldByPeer
        /// Redis cannot arbitrate (not ready, refused): fetch without the lock.
        case unavailable(String)
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

    /// `SET <lock> <token> NX PX <ttl>`.
    func acquire(_ chat: ChatID) async -> Acquisition {
        let token = "\(coordination.instanceID):\(UInt64.random(in: 0...UInt64.max))"
        let milliseconds = max(1, Int64(coordination.refreshLockTTL.timeInterval * 1000))
        do {
            let reply = try await supervisor.send(RedisCommand("SET", [
                ParticipantsKeys.refreshLock(chat), token, "NX", "PX", String(milliseconds),
            ]))
            return reply.isNull ? .heldByPeer : .acquired(token: token)
        } catch {
            return .unavailable("\(error)")
        }
    }

    /// Deletes the lock if it is still ours; failures are left to the TTL.
    func release(_ chat: ChatID, token: String) async {
        _ = try? await supervisor.send(RedisCommand("EVAL", [
            ParticipantsKeys.compareAndDeleteScript, "1", ParticipantsKeys.refreshLock(chat), token,
        ]))
    }

    /// The chat's entry, not-found marker and lock in one round trip; nil when Redis cannot answer.
    func peek(_ chat: ChatID) async -> PeerView? {
        guard let replies = try? await supervisor.pipeline([
            .get(ParticipantsKeys.entry(chat)),
            RedisCommand("EXISTS", [ParticipantsKeys.notFound(chat)]),
            RedisCommand("EXISTS", [ParticipantsKeys.refreshLock(chat)]),
        ]), replies.count == 3, replies.allSatisfy({ $0.errorMessage == nil })
        else { return nil }
        return PeerView(entry: replies[0].bytes, notFound: replies[1].int == 1, lockHeld: replies[2].int == 1)
    }
}
