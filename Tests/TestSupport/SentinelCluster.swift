import ChatRuntime
import Foundation
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A Redis Sentinel setup on loopback for failover tests: a master, one replica (`replicaof`)
/// and three sentinels (quorum 2, down after 1 s, failover timeout 3 s, announcing 127.0.0.1),
/// each on a free port with its own temporary directory and config.
///
/// ``start(masterName:logger:)`` returns once the replica is in sync and every sentinel sees
/// the replica and the other sentinels, so a test may kill the master at once and expect a
/// failover. Every wait is bounded; every process dies with the test process, and
/// ``cleanup()`` (also run by `deinit`) kills them and removes their directories.
public final class SentinelCluster: Sendable {
    public let masterName: String
    /// The master at start (a replica, or dead, after a failover).
    public let master: RedisServer
    /// The replica at start (the master after a failover).
    public let replica: RedisServer
    private let sentinels: [SentinelProcess]

    /// How long start waits for the setup to settle.
    public static let settleTimeout: Duration = .seconds(40)

    public static func start(masterName: String = "mymaster", logger: Logger = Logger(label: "test.sentinel")) async throws -> SentinelCluster {
        let master = try await RedisServer.start(logger: logger)
        let replica: RedisServer
        do {
            replica = try await RedisServer.start(extraConfig: ["replicaof 127.0.0.1 \(master.port)"], logger: logger)
        } catch {
            master.cleanup()
            throw error
        }
        var sentinels: [SentinelProcess] = []
        do {
            // Sentinels discover replicas from the master's INFO: start them once the replica is in.
            try await waitUntil("the replica syncs with the master", timeout: settleTimeout) {
                (try? await replica.cli("INFO", "replication"))?.contains("master_link_status:up") == true
            }
            for _ in 0..<3 {
                sentinels.append(try await SentinelProcess.start(masterName: masterName, masterPort: master.port, logger: logger))
            }
            let cluster = SentinelCluster(masterName: masterName, master: master, replica: replica, sentinels: sentinels)
            try await cluster.waitUntilSettled()
            return cluster
        } catch {
            for sentinel in sentinels { sentinel.cleanup() }
            replica.cleanup()
            master.cleanup()
            throw error
        }
    }

    private init(masterName: String, master: RedisServer, replica: RedisServer, sentinels: [SentinelProcess]) {
        self.masterName = masterName
        self.master = master
        self.replica = replica
        self.sentinels = sentinels
    }

    deinit {
        cleanup()
    }

    /// The sentinels' ports, in start order.
    public var sentinelPorts: [Int] { sentinels.map(\.port) }

    /// `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`, as REDIS_SENTINELS takes it.
    public var sentinelList: String {
        sentinels.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
    }

    /// The master's port according to sentinel `index`, nil when it cannot say.
    public func masterPort(accordingTo index: Int = 0) async -> Int? {
        guard let output = try? await redisCLI(port: sentinels[index].port, ["SENTINEL", "get-master-addr-by-name", masterName]) else {
            return nil
        }
        let lines = output.split(separator: "\n")
        return lines.count == 2 ? Int(lines[1]) : nil
    }

    /// The fields of `SENTINEL master <name>` on sentinel `index`.
    public func masterState(accordingTo index: Int) async -> [String: String] {
        guard let output = try? await redisCLI(port: sentinels[index].port, ["SENTINEL", "master", masterName]) else { return [:] }
        return Self.pairs(output)
    }

    /// Kills every process and removes their directories. Idempotent.
    public func cleanup() {
        for sentinel in sentinels { sentinel.cleanup() }
        replica.cleanup()
        master.cleanup()
    }

    /// The end of each sentinel's log, for failure messages.
    public func sentinelLogTails(maxBytes: Int = 1500) -> String {
        sentinels.map { "sentinel :\($0.port):\n\($0.logTail(maxBytes: maxBytes))" }.joined(separator: "\n")
    }

    /// Every sentinel monitors the master, sees the replica with its link up, and knows the
    /// other two sentinels (needed for the quorum and the leader election).
    private func waitUntilSettled() async throws {
        let others = String(sentinels.count - 1)
        try await Self.waitUntil("the sentinels see the replica and each other", timeout: Self.settleTimeout, details: { self.sentinelLogTails() }) {
            for index in sentinels.indices {
                let state = await masterState(accordingTo: index)
                guard state["flags"] == "master", state["num-slaves"] == "1", state["num-other-sentinels"] == others else { return false }
                guard let replicas = try? await redisCLI(port: sentinels[index].port, ["SENTINEL", "replicas", masterName]),
                    Self.pairs(replicas)["master-link-status"] == "ok"
                else { return false }
            }
            return true
        }
    }

    /// `redis-cli` output of a flat reply as key → value (lines alternate).
    static func pairs(_ output: String) -> [String: String] {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var result: [String: String] = [:]
        var index = 0
        while index + 1 < lines.count {
            result[lines[index]] = lines[index + 1]
            index += 2
        }
        return result
    }

    static func waitUntil(
        _ what: String, timeout: Duration, details: () -> String = { "" }, _ condition: () async -> Bool
    ) async throws {
        // Every 100 ms: each look asks the sentinels through redis-cli.
        guard await eventually(timeout: timeout, every: .milliseconds(100), condition) else {
            throw RedisServerError("timed out after \(timeout) waiting until \(what)\n\(details())")
        }
    }
}

/// Runs `redis-cli -h 127.0.0.1 -p port args...` (bounded to 10 s) and returns its output
/// without the final newline.
func redisCLI(port: Int, _ arguments: [String]) async throws -> String {
    guard let executable = ChildProcess.findExecutable("redis-cli", fallback: "/usr/bin/redis-cli") else {
        throw RedisServerError("redis-cli was found neither on PATH nor at /usr/bin/redis-cli")
    }
    let output = try await ChildProcess.run(
        executable: executable, arguments: ["-h", "127.0.0.1", "-p", "\(port)"] + arguments, timeout: .seconds(10))
    guard output.status == .exited(code: 0) else {
        throw RedisServerError("redis-cli -p \(port) \(arguments.joined(separator: " ")) ended with \(output.status): \(output.standardError)")
    }
    var text = output.standardOutput
    if text.hasSuffix("\n") { text.removeLast() }
    return text
}

/// One `redis-sentinel` process (or `redis-server --sentinel` where the sentinel package is
/// missing; it is the same program) with its own rewritable config.
final class SentinelProcess: Sendable {
    let port: Int
    private let directory: String
    private let process = AnnotatedMutex<ChildProcess?>(nil)
    private let cleanedUp = Atomic<Bool>(false)

    static func start(masterName: String, masterPort: Int, logger: Logger) async throws -> SentinelProcess {
        var failures: [String] = []
        for _ in 0..<3 {
            let sentinel = try SentinelProcess(port: freeLoopbackPort(), masterName: masterName, masterPort: masterPort)
            do {
                try await sentinel.launch()
                logger.debug("redis-sentinel started", metadata: ["redis.port": "\(sentinel.port)"])
                return sentinel
            } catch {
                failures.append("\(error)")
                sentinel.cleanup()
            }
        }
        throw RedisServerError("redis-sentinel did not start: \(failures.joined(separator: "; "))")
    }

    private init(port: Int, masterName: String, masterPort: Int) throws {
        self.port = port
        var template = Array("\(NSTemporaryDirectory())/redis-sentinel-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw RedisServerError("mkdtemp failed: errno \(errno)") }
        directory = String(cString: created)
        let lines = [
            "port \(port)",
            "bind 127.0.0.1",
            "daemonize no",
            "dir \"\(directory)\"",
            "logfile \"\(directory)/sentinel.log\"",
            "sentinel resolve-hostnames no",
            "sentinel announce-ip 127.0.0.1",
            "sentinel monitor \(masterName) 127.0.0.1 \(masterPort) 2",
            "sentinel down-after-milliseconds \(masterName) 1000",
            "sentinel failover-timeout \(masterName) 3000",
            "sentinel parallel-syncs \(masterName) 1",
        ]
        do {
            try (lines.joined(separator: "\n") + "\n").write(toFile: configPath, atomically: true, encoding: .utf8)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    deinit {
        cleanup()
    }

    private var configPath: String { "\(directory)/sentinel.conf" }

    private func launch() async throws {
        let executable: String
        var arguments = [configPath]
        if let sentinel = ChildProcess.findExecutable("redis-sentinel", fallback: "/usr/bin/redis-sentinel") {
            executable = sentinel
        } else if let server = ChildProcess.findExecutable("redis-server", fallback: "/usr/bin/redis-server") {
            executable = server
            arguments.append("--sentinel")
        } else {
            throw RedisServerError("neither redis-sentinel nor redis-server was found")
        }
        let child = try await ChildProcess.spawn(executable: executable, arguments: arguments, killWithTestProcess: true)
        process.withLock { $0 = child }
        let deadline = ContinuousClock.now + RedisServer.startTimeout
        while true {
            let status = child.status()
            if status != .running {
                process.withLock { $0 = nil }
                throw RedisServerError("redis-sentinel on port \(port) exited at start (\(status)): \(logTail(maxBytes: 500))")
            }
            if RedisProbe.answersPing(port: port, password: nil) { return }
            if ContinuousClock.now >= deadline {
                throw RedisServerError("redis-sentinel on port \(port) did not answer PING within \(RedisServer.startTimeout)")
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    func logTail(maxBytes: Int) -> String {
        guard let data = FileManager.default.contents(atPath: "\(directory)/sentinel.log") else { return "" }
        return String(decoding: data.suffix(maxBytes), as: UTF8.self)
    }

    func cleanup() {
        guard !cleanedUp.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let child = process.withLock { process in
            defer { process = nil }
            return process
        }
        if let child {
            child.send(SIGKILL)
            _ = child.waitForExitBlocking(within: .seconds(5))
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
