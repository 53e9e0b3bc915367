import ChatRuntime
import Logging

/// `XREADGROUP ... BLOCK` on a connection of its own, so that an idle reader of the batch stream
/// learns of the next append of any instance at once instead of polling. A blocking command
/// cannot go on the supervisor's connection: it is pipelined and shared, and everything behind
/// the blocked read would wait with it.
///
/// The connection goes to the server the supervisor is connected to (with Sentinel, the master
/// it found; with a cluster, the primary of the stream's slot) and is opened on first use; any
/// failure closes it, and the next read opens a new one. Its command timeout is the block time
/// plus the supervisor's, so a frozen server still fails the read.
actor BlockingStreamReader {
    nonisolated let unownedExecutor: UnownedSerialExecutor
    private let supervisor: RedisSupervisor
    private let loop: EventLoop
    private let settings: CoordinationSettings
    private let logger: Logger
    private var connection: RedisConnection?

    init(supervisor: RedisSupervisor, loop: EventLoop, settings: CoordinationSettings, logger: Logger) {
        unownedExecutor = loop.asUnownedSerialExecutor()
        self.supervisor = supervisor
        self.loop = loop
        self.settings = settings
        self.logger = logger
    }

    /// Up to `count` new entries, waiting up to the block time for the first; empty when none
    /// came in that time. Throws when there is no connection to be had or the read failed.
    func read(count: Int) async throws -> BatchStream.Read {
        let connection = try await connected()
        let replies: [RESPValue]
        do {
            replies = try await connection.pipeline([
                RedisCommand("GET", [CoordinationKeys.fence]),
                RedisCommand(
                    "XREADGROUP",
                    [
                        "GROUP", CoordinationKeys.group, settings.instanceID, "COUNT", String(max(1, count)),
                        "BLOCK", String(LeaderElector.milliseconds(settings.blockTime)),
                        "STREAMS", CoordinationKeys.batches, ">",
                    ]),
            ])
        } catch {
            await drop()
            throw error
        }
        do {
            return try BatchStream.read(from: replies)
        } catch {
            // An error reply (in a cluster, `MOVED` after the stream's slot moved): the next read
            // asks the supervisor where the stream lives now.
            await drop()
            throw error
        }
    }

    /// Closes the connection (shutdown): a read in progress fails.
    func close() async {
        await drop()
    }

    private func connected() async throws -> RedisConnection {
        if let connection, await connection.isConnected { return connection }
        guard let endpoint = await supervisor.connectedEndpoint(forKey: CoordinationKeys.batches) else {
            throw RedisNotReadyError(state: await supervisor.state)
        }
        var options = supervisor.connectionOptions
        options.commandTimeout = options.commandTimeout + settings.blockTime
        let opened = try await RedisConnection.connect(to: endpoint, on: loop, options: options, logger: logger)
        connection = opened
        return opened
    }

    private func drop() async {
        guard let connection else { return }
        self.connection = nil
        await connection.close()
    }
}
