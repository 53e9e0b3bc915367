/// The Lua scripts behind leader election, tick claims, shared run records and batch
/// settlement. Each runs atomically in Redis, which is what makes the checks in them (does this
/// instance still hold the lock? was this tick claimed? was this batch acknowledged already?)
/// race-free across instances. docs/COORDINATION.md describes them in prose.
enum CoordinationScripts {
    /// KEYS[1] lock, KEYS[2] fence; ARGV[1] lock value, ARGV[2] TTL in ms.
    /// `{1, fence}` when acquired (the fence `INCR`ed in the same step), `{0, PTTL}` when held.
    static let acquire = """
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
          return {1, redis.call('INCR', KEYS[2])}
        end
        return {0, redis.call('PTTL', KEYS[1])}
        """

    /// Compare-and-pexpire. KEYS[1] lock; ARGV[1] lock value, ARGV[2] TTL in ms. 1 renewed, 0 not ours.
    static let renew = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        """

    /// Compare-and-delete. KEYS[1] lock; ARGV[1] lock value. 1 released, 0 not ours.
    static let release = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return redis.call('DEL', KEYS[1])
        end
        return 0
        """

    /// Ends a run whose producer is done once every planned batch is accounted for; returns the
    /// run's state. Shared by the scripts that may be the last word on a run.
    private static let settleRunFunction = """
        local function settle_run(run, active, id, now)
          local v = redis.call('HMGET', run, 'state', 'producer_done', 'batches_planned', 'batches_done',
            'batches_failed', 'batches_skipped', 'producer_end')
          if v[1] ~= 'running' or v[2] ~= '1' then return v[1] or '' end
          local planned = tonumber(v[3]) or 0
          local done = tonumber(v[4]) or 0
          local failed = tonumber(v[5]) or 0
          local skipped = tonumber(v[6]) or 0
          if done + failed + skipped < planned then return 'running' end
          local state = 'completed'
          if v[7] == 'failed' then
            state = 'failed'
          elseif v[7] == 'interrupted' or skipped > 0 then
            state = 'cancelled'
          elseif planned > 0 and failed == planned then
            state = 'failed'
            redis.call('HSET', run, 'failure', 'every batch failed upstream')
          end
          redis.call('HSET', run, 'state', state, 'finished_at', now)
          if redis.call('GET', active) == id then redis.call('DEL', active) end
          return state
        end

        """

    /// Trims the stream of what the group has acknowledged, never further: `XTRIM MINID ~` up to
    /// the oldest entry that is pending (delivered, not acknowledged) or not yet delivered. Run by
    /// every append, so processed batches do not pile up while unprocessed ones are never lost
    /// to trimming (a dead instance's pending batches wait for their claim). Creates the group
    /// first if it is missing, so that no entry is appended without it.
    private static let trimFunction = """
        local function id_parts(id)
          local ms, seq = string.match(id, '^(%d+)-(%d+)$')
          return tonumber(ms), tonumber(seq)
        end
        local function id_less(a, b)
          local am, as = id_parts(a)
          local bm, bs = id_parts(b)
          return am < bm or (am == bm and as < bs)
        end
        local function ensure_group(stream, group)
          redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
        end
        local function trim_acknowledged(stream, group)
          local groups = redis.pcall('XINFO', 'GROUPS', stream)
          if type(groups) ~= 'table' or groups.err then return end
          local delivered
          for _, g in ipairs(groups) do
            local name, last
            for i = 1, #g, 2 do
              if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
            end
            if name == group then delivered = last end
          end
          if not delivered then return end
          local ms, seq = id_parts(delivered)
          local floor = string.format('%d-%d', ms, seq + 1)
          local pending = redis.call('XPENDING', stream, group)
          if pending[2] and id_less(pending[2], floor) then floor = pending[2] end
          redis.call('XTRIM', stream, 'MINID', '~', floor)
        end

        """

    /// KEYS[1] stream; ARGV[1] group. Trims what was acknowledged; returns `XLEN`.
    static let trim =
        trimFunction + """
            trim_acknowledged(KEYS[1], ARGV[1])
            return redis.call('XLEN', KEYS[1])
            """

    /// Creates a run record, or joins or skips for the run going (one full and one
    /// interval-style run at a time, cluster-wide), optionally claiming a scheduled tick in the
    /// same step so that no tick is run twice and no claimed tick goes without its run.
    ///
    /// Every key it touches is in `KEYS` (a cluster requires it): the records of the runs going
    /// are named by the caller from the active ids it read just before, and the script answers
    /// `changed` when those ids moved meanwhile, for the caller to read them again.
    ///
    /// KEYS[1] lock, KEYS[2] tick key, KEYS[3] active full, KEYS[4] active interval, KEYS[5] run,
    /// KEYS[6] run index, KEYS[7] the active full run's record, KEYS[8] the active interval
    /// run's record (each any key of the tag when there is none). ARGV[1] lock value ('' when
    /// any instance may create: manual requests), ARGV[2] tick instant in ms ('' for no tick),
    /// ARGV[3] minimum gap to the last claimed tick in ms, ARGV[4] run id, ARGV[5] kind,
    /// ARGV[6] trigger, ARGV[7] now ms, ARGV[8] now ISO, ARGV[9] retention s, ARGV[10] index
    /// limit, ARGV[11] the active full id read ('' none), ARGV[12] the active interval id read.
    /// Returns `{outcome, id}`: started, joined, skipped, already_claimed, not_leader, collision,
    /// changed.
    static let createRun = """
        if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'not_leader', ''} end
        if (redis.call('GET', KEYS[3]) or '') ~= ARGV[11] or (redis.call('GET', KEYS[4]) or '') ~= ARGV[12] then
          return {'changed', ''}
        end
        if ARGV[2] ~= '' then
          local raw = redis.call('GET', KEYS[2])
          local last = tonumber(raw or '')
          if last and tonumber(ARGV[2]) < last + tonumber(ARGV[3]) then return {'already_claimed', raw} end
        end
        local function claim_tick()
          if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[9]) end
        end
        local function live(active, record)
          local id = redis.call('GET', active)
          if id and redis.call('EXISTS', record) == 0 then
            redis.call('DEL', active)
            return false
          end
          return id
        end
        local kind = ARGV[5]
        local full = live(KEYS[3], KEYS[7])
        local interval = live(KEYS[4], KEYS[8])
        local slot
        if kind == 'full' or kind == 'manual_full' then
          if full then
            claim_tick()
            redis.call('HINCRBY', KEYS[7], 'joined_requests', 1)
            return {'joined', full}
          end
          slot = KEYS[3]
        elseif kind == 'interval' then
          local covering = full or interval
          if covering then
            claim_tick()
            return {'skipped', covering}
          end
          slot = KEYS[4]
        else
          if interval then
            claim_tick()
            redis.call('HINCRBY', KEYS[8], 'joined_requests', 1)
            return {'joined', interval}
          end
          slot = KEYS[4]
        end
        if redis.call('EXISTS', KEYS[5]) == 1 then return {'collision', ''} end
        claim_tick()
        redis.call('HSET', KEYS[5], 'id', ARGV[4], 'kind', kind, 'trigger', ARGV[6], 'state', 'queued',
          'started_at', ARGV[8], 'fence', '0', 'leader', '', 'adoptions', '0', 'joined_requests', '0',
          'producer_done', '0', 'producer_end', '', 'cursor', '', 'pages_read', '0', 'chats_considered', '0',
          'chats_planned', '0', 'chats_refreshed', '0', 'chats_not_found', '0', 'chats_failed', '0',
          'chats_skipped', '0', 'batches_planned', '0', 'batches_done', '0', 'batches_deferred', '0',
          'batches_failed', '0', 'batches_skipped', '0', 'ids_rejected', '0', 'errors_total', '0',
          'updated_ms', ARGV[7])
        redis.call('EXPIRE', KEYS[5], ARGV[9])
        redis.call('SET', slot, ARGV[4], 'EX', ARGV[9])
        redis.call('ZADD', KEYS[6], ARGV[7], ARGV[4])
        redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -(tonumber(ARGV[10]) + 1))
        return {'started', ARGV[4]}
        """

    /// The leader takes over the production of an active run: a queued one nobody produced yet,
    /// or one whose producer was an earlier leader. Fails runs whose producer finished long ago
    /// but whose batches never all came back (lost to trimming), so they do not block new runs.
    ///
    /// KEYS[1] lock, KEYS[2] run, KEYS[3] active key. ARGV[1] lock value, ARGV[2] fence,
    /// ARGV[3] instance id, ARGV[4] run id, ARGV[5] now ms, ARGV[6] stuck-before ms, ARGV[7] now ISO.
    /// Returns `{'adopted', previous fence, {field, value, ...}}`, or `{outcome}`: not_leader,
    /// gone, ended, settling, reaped.
    static let adoptRun = """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'not_leader'} end
        if redis.call('EXISTS', KEYS[2]) == 0 then
          if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
          return {'gone'}
        end
        local v = redis.call('HMGET', KEYS[2], 'state', 'producer_done', 'fence', 'updated_ms',
          'batches_planned', 'batches_done', 'batches_failed', 'batches_skipped')
        if v[1] ~= 'queued' and v[1] ~= 'running' then
          if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
          return {'ended'}
        end
        if v[2] == '1' then
          if (tonumber(v[4]) or 0) < tonumber(ARGV[6]) then
            local missing = tonumber(v[5]) - tonumber(v[6]) - tonumber(v[7]) - tonumber(v[8])
            redis.call('HSET', KEYS[2], 'state', 'failed', 'finished_at', ARGV[7],
              'failure', string.format('%d batches were never accounted for', missing))
            if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
            return {'reaped'}
          end
          return {'settling'}
        end
        local previous = v[3] or '0'
        if previous ~= ARGV[2] then
          if previous ~= '0' then redis.call('HINCRBY', KEYS[2], 'adoptions', 1) end
          redis.call('HSET', KEYS[2], 'fence', ARGV[2], 'leader', ARGV[3], 'state', 'running', 'updated_ms', ARGV[5])
        end
        return {'adopted', previous, redis.call('HGETALL', KEYS[2])}
        """

    /// Appends batches of a run to the stream, fenced: only the current lock holder producing
    /// the run (its fence on the record) may append. Numbers the batches, books them as planned
    /// with the listing progress, and with `final` marks the producer done. `XADD ... MAXLEN ~`
    /// caps the stream; the producer keeps it well below the cap (it waits while the stream is
    /// half full), so the cap never reaches an unprocessed batch, and what was processed is
    /// trimmed by ``trim``'s rule on every append.
    ///
    /// KEYS[1] lock, KEYS[2] run, KEYS[3] stream, KEYS[4] active key. ARGV[1] lock value,
    /// ARGV[2] fence, ARGV[3] run id, ARGV[4] kind, ARGV[5] stream max length, ARGV[6] '1' to set
    /// the cursor, ARGV[7] cursor, ARGV[8] '1' when final, ARGV[9] pages read, ARGV[10] chats
    /// considered, ARGV[11] ids rejected, ARGV[12] now ISO, ARGV[13] now ms, ARGV[14] chats in
    /// these batches, ARGV[15] group, ARGV[16...] one batch each (chat ids separated by spaces).
    /// Returns `{state, backlog, stream length}` (backlog: batches planned but not yet
    /// accounted for), or `{'not_leader', 0, 0}` / `{'not_owner', 0, 0}`.
    static let append =
        settleRunFunction + trimFunction + """
            if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'not_leader', 0, 0} end
            local v = redis.call('HMGET', KEYS[2], 'state', 'fence', 'batches_planned')
            if v[1] ~= 'running' or v[2] ~= ARGV[2] then return {'not_owner', 0, 0} end
            ensure_group(KEYS[3], ARGV[15])
            local number = tonumber(v[3]) or 0
            for i = 16, #ARGV do
              number = number + 1
              redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'run', ARGV[3], 'kind', ARGV[4],
                'fence', ARGV[2], 'number', string.format('%d', number), 'chats', ARGV[i])
            end
            redis.call('HINCRBY', KEYS[2], 'batches_planned', #ARGV - 15)
            redis.call('HINCRBY', KEYS[2], 'chats_planned', ARGV[14])
            redis.call('HINCRBY', KEYS[2], 'pages_read', ARGV[9])
            redis.call('HINCRBY', KEYS[2], 'chats_considered', ARGV[10])
            redis.call('HINCRBY', KEYS[2], 'ids_rejected', ARGV[11])
            if ARGV[6] == '1' then redis.call('HSET', KEYS[2], 'cursor', ARGV[7]) end
            redis.call('HSET', KEYS[2], 'updated_ms', ARGV[13])
            local state = 'running'
            if ARGV[8] == '1' then
              redis.call('HSET', KEYS[2], 'producer_done', '1', 'producer_end', 'finished')
              state = settle_run(KEYS[2], KEYS[4], ARGV[3], ARGV[12])
            end
            trim_acknowledged(KEYS[3], ARGV[15])
            local c = redis.call('HMGET', KEYS[2], 'batches_planned', 'batches_done', 'batches_failed', 'batches_skipped')
            return {state, tonumber(c[1]) - tonumber(c[2]) - tonumber(c[3]) - tonumber(c[4]), redis.call('XLEN', KEYS[3])}
            """

    /// Ends a run's production, fenced like ``append``.
    ///
    /// KEYS[1] lock, KEYS[2] run, KEYS[3] active key. ARGV[1] lock value, ARGV[2] fence,
    /// ARGV[3] run id, ARGV[4] end (finished, failed, interrupted), ARGV[5] failure ('' none),
    /// ARGV[6] now ISO, ARGV[7] now ms. Returns `{'ok', state}`, `{'not_leader'}`, `{'not_owner'}`.
    static let finishProducer =
        settleRunFunction + """
            if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'not_leader'} end
            local v = redis.call('HMGET', KEYS[2], 'state', 'fence')
            if v[1] ~= 'running' or v[2] ~= ARGV[2] then return {'not_owner'} end
            redis.call('HSET', KEYS[2], 'producer_done', '1', 'producer_end', ARGV[4], 'updated_ms', ARGV[7])
            if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'failure', ARGV[5]) end
            return {'ok', settle_run(KEYS[2], KEYS[3], ARGV[3], ARGV[6])}
            """

    /// Acknowledges a processed batch and books its outcome on its run, once: a batch processed
    /// twice (claimed from an instance that was slow, not dead) is counted by whichever
    /// acknowledges first, because only that `XACK` returns 1.
    ///
    /// KEYS[1] stream, KEYS[2] run, KEYS[3] errors list, KEYS[4] active key. ARGV[1] group,
    /// ARGV[2] entry id, ARGV[3] result (written, deferred, failed), ARGV[4] chats refreshed,
    /// ARGV[5] chats not found, ARGV[6] chats failed, ARGV[7] run id, ARGV[8] now ISO,
    /// ARGV[9] now ms, ARGV[10] error limit, ARGV[11] retention s, ARGV[12...] error lines.
    /// Returns `{'counted', state}`, `{'duplicate', ''}` or `{'unknown_run', ''}`.
    static let settleBatch =
        settleRunFunction + """
            if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return {'duplicate', ''} end
            if redis.call('EXISTS', KEYS[2]) == 0 then return {'unknown_run', ''} end
            local result = ARGV[3]
            if result == 'written' or result == 'deferred' then redis.call('HINCRBY', KEYS[2], 'batches_done', 1) end
            if result == 'deferred' then redis.call('HINCRBY', KEYS[2], 'batches_deferred', 1) end
            if result == 'failed' then redis.call('HINCRBY', KEYS[2], 'batches_failed', 1) end
            redis.call('HINCRBY', KEYS[2], 'chats_refreshed', ARGV[4])
            redis.call('HINCRBY', KEYS[2], 'chats_not_found', ARGV[5])
            redis.call('HINCRBY', KEYS[2], 'chats_failed', ARGV[6])
            if #ARGV >= 12 then
              for i = 12, #ARGV do redis.call('LPUSH', KEYS[3], ARGV[i]) end
              redis.call('HINCRBY', KEYS[2], 'errors_total', #ARGV - 11)
              redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[10]) - 1)
              redis.call('EXPIRE', KEYS[3], ARGV[11])
            end
            redis.call('HSET', KEYS[2], 'updated_ms', ARGV[9])
            return {'counted', settle_run(KEYS[2], KEYS[4], ARGV[7], ARGV[8])}
            """

    /// Adds an error line to a run that exists. KEYS[1] run, KEYS[2] errors list; ARGV[1] line,
    /// ARGV[2] error limit, ARGV[3] retention s. 1 recorded, 0 no such run.
    static let recordError = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        redis.call('HINCRBY', KEYS[1], 'errors_total', 1)
        redis.call('LPUSH', KEYS[2], ARGV[1])
        redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
        redis.call('EXPIRE', KEYS[2], ARGV[3])
        return 1
        """
}
