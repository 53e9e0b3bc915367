import Actors

/// What tests of the leader election read off Redis directly.
extension RedisServer {
    /// Watches the leader lock until its holder has renewed it `renewals` times (its PTTL jumped
    /// back up), so a test that checks leadership held steady checks it over renewals that did
    /// happen rather than over a guessed stretch of time. Returns every value the lock held
    /// meanwhile (one, when nobody took it over), or nil when the renewals did not come within
    /// `timeout` (or the lock went away).
    public func watchLeaderLock(renewals: Int, timeout: Duration = .seconds(30)) async -> Set<String>? {
        var values: Set<String> = []
        var lastTTL: Int?
        var seen = 0
        let renewed = await eventually(timeout: timeout) {
            // One round trip for both, so the value and its TTL belong together.
            guard let reply = try? await cli(
                "EVAL", "return {redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1])}", "1", CoordinationKeys.leader)
            else { return false }
            let lines = reply.split(separator: "\n", omittingEmptySubsequences: false)
            guard lines.count == 2, !lines[0].isEmpty, let ttl = Int(lines[1]), ttl > 0 else { return false }
            values.insert(String(lines[0]))
            // A renewal sets the TTL back to its full length: well above where it had run down to.
            if let lastTTL, ttl > lastTTL + 50 { seen += 1 }
            lastTTL = ttl
            return seen >= renewals
        }
        return renewed ? values : nil
    }
}
