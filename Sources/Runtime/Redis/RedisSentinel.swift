public import Logging

/// Redis Sentinel discovery: which sentinels to ask, and for which master.
///
/// Sentinels are asked without AUTH (sentinel passwords are not supported); the password,
/// user and database of the Redis URL apply to the master found.
public struct RedisSentinelSettings: Sendable, Hashable {
    /// Asked in order; the first that names the master wins.
    public var sentinels: [RedisServerAddress]
    /// The name the sentinels monitor the master under (`sentinel monitor <name> ...`).
    public var masterName: String

    public init(sentinels: [RedisServerAddress], masterName: String) {
        self.sentinels = sentinels
        self.masterName = masterName
    }
}

/// Finding and checking the master through Redis Sentinel, following the Sentinel client
/// guidelines: ask the sentinels in turn (`SENTINEL get-master-addr-by-name`), connect to the
/// address given, then confirm with `ROLE` that the server really is a master (a sentinel's
/// view can be stale during a failover).
public enum RedisSentinel {
    /// Asks each sentinel in order, over a short-lived connection bounded by the connect
    /// timeout (for the command too), and returns `base` with the master's host and port; its
    /// password, user and database are kept. Throws `.connectFailed` naming every sentinel's
    /// failure when none names the master.
    public static func masterEndpoint(
        _ settings: RedisSentinelSettings,
        base: RedisEndpoint,
        on loop: EventLoop,
        connectTimeout: Duration,
        logger: Logger
    ) async throws(RedisError) -> RedisEndpoint {
        var failures: [String] = []
        for sentinel in settings.sentinels {
            do {
                let address = try await askMaster(
                    settings.masterName, sentinel: sentinel, on: loop, timeout: connectTimeout, logger: logger)
                var endpoint = base
                endpoint.host = address.host
                endpoint.port = address.port
                return endpoint
            } catch {
                failures.append("\(sentinel): \(error.message)")
            }
        }
        throw RedisError(
            code: .connectFailed,
            message: "no sentinel named master '\(settings.masterName)': \(failures.joined(separator: "; "))")
    }

    /// The role a server reports (`master`, `slave` or `sentinel`), from `ROLE`.
    public static func role(of connection: RedisConnection) async throws(RedisError) -> String {
        try role(from: await connection.send(RedisCommand("ROLE", [])))
    }

    /// The role in a `ROLE` reply: its first element.
    public static func role(from reply: RESPValue) throws(RedisError) -> String {
        guard let role = reply.array?.first?.string else {
            throw RedisError(code: .protocolError, message: "unexpected ROLE reply \(reply)")
        }
        return role
    }

    /// The master's address from `SENTINEL get-master-addr-by-name` (`[host, port]`, or nil
    /// when the sentinel does not know the name).
    public static func masterAddress(from reply: RESPValue) throws(RedisError) -> RedisServerAddress {
        if reply.isNull {
            throw RedisError(code: .connectFailed, message: "the sentinel does not monitor this master name")
        }
        guard let parts = reply.array, parts.count == 2, let host = parts[0].string, !host.isEmpty,
            let port = parts[1].int, (1...65535).contains(port)
        else {
            throw RedisError(code: .protocolError, message: "unexpected get-master-addr-by-name reply \(reply)")
        }
        return RedisServerAddress(host: host, port: Int(port))
    }

    private static func askMaster(
        _ name: String, sentinel: RedisServerAddress, on loop: EventLoop, timeout: Duration, logger: Logger
    ) async throws(RedisError) -> RedisServerAddress {
        let connection = try await RedisConnection.connect(
            to: RedisEndpoint(host: sentinel.host, port: sentinel.port), on: loop,
            options: RedisConnectionOptions(connectTimeout: timeout, commandTimeout: timeout), logger: logger)
        let reply: RESPValue
        do {
            reply = try await connection.send(RedisCommand("SENTINEL", ["get-master-addr-by-name", name]))
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        return try masterAddress(from: reply)
    }
}
