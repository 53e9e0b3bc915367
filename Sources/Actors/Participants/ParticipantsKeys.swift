/// The Redis keys of the participants layer (DESIGN §7). The braces keep a chat's keys in one
/// cluster slot; the keys shared by every chat (tracked chats, the invalidation stream) carry
/// the coordination keys' tag, ``CoordinationKeys/prefix``.
public enum ParticipantsKeys {
    /// The entry JSON of a chat.
    public static func entry(_ chat: ChatID) -> String { chat.redisKey }

    /// Marks a chat upstream answered 404 for, for PARTICIPANTS_NOT_FOUND_TTL.
    public static func notFound(_ chat: ChatID) -> String { chat.redisKey + ":missing" }

    /// Sorted set of chats read recently: member chat id, score the unix time of the last read.
    public static let tracked = CoordinationKeys.prefix + "tracked"

    /// Writes an entry only when Redis holds nothing newer (compared by `fetched_at`, the last
    /// key of the entry JSON; ISO 8601 UTC strings of one format order like the instants).
    /// Used for write-back after an outage, when another instance may have refreshed meanwhile.
    /// KEYS[1] entry key; ARGV[1] entry JSON, ARGV[2] its fetched_at, ARGV[3] EX seconds.
    public static let writeIfNewerScript = """
        local current = redis.call('GET', KEYS[1])
        if current then
          local fetched = string.match(current, '"fetched_at":"([^"]+)"}$')
          if fetched and fetched >= ARGV[2] then return 0 end
        end
        redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
        return 1
        """

    /// The per-chat refresh lock (`SET NX PX`): its holder calls upstream, the other instances
    /// wait for the result in Redis. Value: the holder's token (instance id and a nonce).
    public static func refreshLock(_ chat: ChatID) -> String { chat.redisKey + ":lock" }

    /// Takes the refresh lock and, when it took it, reads what a previous holder may have left,
    /// in one round trip: the lock can be free because a holder just finished, and its result
    /// must then be used instead of calling upstream again.
    /// KEYS[1] the lock, KEYS[2] the entry, KEYS[3] the not-found marker (one hash tag, one slot);
    /// ARGV[1] the token, ARGV[2] the lock's lifetime in milliseconds.
    /// Returns `{0}` when the lock is held, `{1, entry or nil, marker exists (0/1)}` when taken.
    public static let acquireRefreshLockScript = """
        if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
        return {1, redis.call('GET', KEYS[2]), redis.call('EXISTS', KEYS[3])}
        """

    /// Stream of L1 invalidations: one entry per cache write, fields `@instance` (the writer),
    /// then chat id → `fetched_at` pairs. Trimmed with `MAXLEN ~`.
    public static let invalidations = CoordinationKeys.prefix + "invalidations"

    /// Deletes KEYS[1] only while it still holds ARGV[1]: a lock that expired and was taken by
    /// another instance is not released by its former holder.
    public static let compareAndDeleteScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """
}
