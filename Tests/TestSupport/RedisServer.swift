public import ChatRuntime
public import Foundation
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real `redis-server` on a free 127.0.0.1 port with its own temporary data directory, for
/// integration tests.
///
/// Every wait is bounded. The server dies with the test process even on a crash (it is started
/// through `setpriv --pdeathsig KILL`), and ``cleanup()`` (also run by `deinit`) kills it and
/// removes its directory; prefer ``withRedisServer(password:extraConfig:logger:isolation:_:)``,
/// which cleans up on every path.
public final class RedisServer: Sendable {
    public let port: Int
    /// The `requirepass` password, if any.
    public let password: String?
    /// The server's working directory: dumps, AOF files and `redis.log`.
    public let dataDirectory: String
    private let executable: String
    private let configPath: String
    private let logger: Logger
    private let process = AnnotatedMutex<ChildProcess?>(nil)
    private let cleanedUp = Atomic<Bool>(false)

    /// How long start and restart wait for the server to answer PING.
    public static let startTimeout: Duration = .seconds(10)

    /// Starts `redis-server` (from PATH, or /usr/bin/redis-server) bound to 127.0.0.1 with
    /// `save ""` and `appendonly no`, then waits until it answers PING. `extraConfig` holds
    /// redis.conf lines (such as `"appendonly yes"`) applied after the defaults, so they win.
    /// Retries on a fresh port if another process took the chosen one, unless `port` is given.
    public static func start(
        port requestedPort: Int? = nil,
        password: String? = nil,
        extraConfig: [String] = [],
        logger: Logger = Logger(label: "test.redis-server")
    ) async throws -> RedisServer {
        guard let executable = ChildProcess.findExecutable("redis-server", fallback: "/usr/bin/redis-server") else {
            throw RedisServerError("redis-server was found neither on PATH nor at /usr/bin/redis-server")
        }
        var failures: [String] = []
        // A requested port is tried once: the caller chose it (e.g. a service already waits there).
        for _ in 0..<(requestedPort == nil ? 3 : 1) {
            let server = try RedisServer(
                executable: executable, port: requestedPort ?? freeLoopbackPort(), password: password,
                extraConfig: extraConfig, logger: logger)
            do {
                try await server.launch(within: startTimeout)
                logger.debug(
                    "redis-server started",
                    metadata: ["redis.port": "\(server.port)", "redis.pid": "\(server.pid ?? 0)"])
                return server
            } catch {
                failures.append("\(error)")
                server.cleanup()
            }
        }
        throw RedisServerError("redis-server did not start: \(failures.joined(separator: "; "))")
    }

    private init(executable: String, port: Int, password: String?, extraConfig: [String], logger: Logger) throws {
        self.executable = executable
        self.port = port
        self.password = password
        self.logger = logger
        let temporaryDirectory =
            NSTemporaryDirectory().hasSuffix("/") ? NSTemporaryDirectory() : NSTemporaryDirectory() + "/"
        var template = Array("\(temporaryDirectory)redis-test-XXXXXX".utf8CString)
        guard let directory = mkdtemp(&template) else {
            throw RedisServerError("mkdtemp failed: errno \(errno)")
        }
        dataDirectory = String(cString: directory)
        configPath = "\(dataDirectory)/redis.conf"
        var lines = [
            "port \(port)",
            "bind 127.0.0.1",
            "dir \(Self.quoted(dataDirectory))",
            "logfile \(Self.quoted(dataDirectory + "/redis.log"))",
            "daemonize no",
            "save \"\"",
            "appendonly no",
        ]
        if let password { lines.append("requirepass \(Self.quoted(password))") }
        lines += extraConfig
        do {
            try (lines.joined(separator: "\n") + "\n").write(toFile: configPath, atomically: true, encoding: .utf8)
        } catch {
            try? FileManager.default.removeItem(atPath: dataDirectory)
            throw error
        }
    }

    deinit {
        cleanup()
    }

    /// `redis://127.0.0.1:port/0`, with the password when there is one.
    public var url: String {
        guard let password else { return "redis://127.0.0.1:\(port)/0" }
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password
        return "redis://:\(encoded)@127.0.0.1:\(port)/0"
    }

    /// The server as an endpoint for database `database`.
    public func endpoint(database: Int = 0) -> RedisEndpoint {
        RedisEndpoint(host: "127.0.0.1", port: port, password: password, database: database)
    }

    /// The pid of the running server, if any.
    public var pid: pid_t? { process.withLock { $0?.pid } }

    /// Stops the server with SIGTERM (continuing it if frozen) and waits up to 5 s for it to
    /// exit, then SIGKILLs it.
    public func stop() async {
        guard let child = process.withLock({ $0 }) else { return }
        child.send(SIGTERM)
        child.send(SIGCONT)
        var status = await child.waitForExit(within: .seconds(5))
        if status == .running {
            logger.warning("redis-server ignored SIGTERM; killing it", metadata: ["redis.port": "\(port)"])
            child.send(SIGKILL)
            status = await child.waitForExit(within: .seconds(5))
        }
        forget(child, status: status)
    }

    /// Kills the server with SIGKILL and reaps it.
    public func kill() async {
        guard let child = process.withLock({ $0 }) else { return }
        child.send(SIGKILL)
        forget(child, status: await child.waitForExit(within: .seconds(5)))
    }

    /// Suspends the server (SIGSTOP): connections stay open, nothing is answered. Returns once
    /// the kernel reports the process stopped (at most about 2 s).
    public func freeze() {
        guard let child = process.withLock({ $0 }) else { return }
        child.send(SIGSTOP)
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < deadline, !Self.isStopped(pid: child.pid) {
            usleep(2_000)
        }
    }

    /// Resumes a frozen server (SIGCONT).
    public func thaw() {
        process.withLock { $0?.send(SIGCONT) }
    }

    /// Starts the server again on the same port and data directory (stopping it first if it
    /// runs) and waits until it answers PING, retrying while the port is briefly busy.
    public func restart() async throws {
        guard !cleanedUp.load(ordering: .acquiring) else {
            throw RedisServerError("restart after cleanup()")
        }
        await stop()
        let deadline = ContinuousClock.now + Self.startTimeout
        var lastError: any Error = RedisServerError("no attempt made")
        while ContinuousClock.now < deadline {
            do {
                try await launch(within: deadline - ContinuousClock.now)
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        throw RedisServerError("redis-server did not restart on port \(port) within \(Self.startTimeout): \(lastError)")
    }

    /// Runs `redis-cli -h 127.0.0.1 -p port [-a password] args...` (bounded to 10 s) and returns
    /// its standard output without the final newline. Redis error replies are output too, not
    /// thrown.
    public func cli(_ arguments: String...) async throws -> String {
        try await cli(arguments: arguments)
    }

    /// ``cli(_:)`` with an array of arguments.
    public func cli(arguments: [String]) async throws -> String {
        guard let redisCLI = ChildProcess.findExecutable("redis-cli", fallback: "/usr/bin/redis-cli") else {
            throw RedisServerError("redis-cli was found neither on PATH nor at /usr/bin/redis-cli")
        }
        var fullArguments = ["-h", "127.0.0.1", "-p", "\(port)"]
        if let password { fullArguments += ["--no-auth-warning", "-a", password] }
        fullArguments += arguments
        let output = try await ChildProcess.run(executable: redisCLI, arguments: fullArguments, timeout: .seconds(10))
        guard output.status == .exited(code: 0) else {
            throw RedisServerError(
                "redis-cli \(arguments.joined(separator: " ")) ended with \(output.status): \(output.standardError)\(output.standardOutput)"
            )
        }
        var text = output.standardOutput
        if text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// Kills the server and removes its data directory. Idempotent; also run by `deinit`.
    public func cleanup() {
        guard !cleanedUp.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let child = process.withLock { process in
            defer { process = nil }
            return process
        }
        if let child {
            child.send(SIGKILL)
            _ = child.waitForExitBlocking(within: .seconds(5))
        }
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    /// The end of `redis.log`, for failure messages.
    public func logTail(maxBytes: Int = 2000) -> String {
        guard let data = FileManager.default.contents(atPath: "\(dataDirectory)/redis.log") else { return "" }
        return String(decoding: data.suffix(maxBytes), as: UTF8.self)
    }

    // MARK: Private

    private func launch(within timeout: Duration) async throws {
        let child = try await ChildProcess.spawn(
            executable: executable, arguments: [configPath], killWithTestProcess: true)
        process.withLock { $0 = child }
        let deadline = ContinuousClock.now + timeout
        while true {
            let status = child.status()
            if status != .running {
                forget(child, status: status)
                throw RedisServerError(
                    "redis-server on port \(port) exited at start (\(status)): \(logTail(maxBytes: 500))")
            }
            if RedisProbe.answersPing(port: port, password: password) { return }
            if ContinuousClock.now >= deadline {
                child.send(SIGKILL)
                forget(child, status: await child.waitForExit(within: .seconds(5)))
                throw RedisServerError("redis-server on port \(port) did not answer PING within \(timeout)")
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Drops the child once reaped; a child still running stays tracked for ``cleanup()``.
    private func forget(_ child: ChildProcess, status: ChildProcess.Status) {
        guard status != .running else { return }
        process.withLock { if $0?.pid == child.pid { $0 = nil } }
    }

    /// Reads the state letter of /proc/<pid>/stat: `T` is stopped by a signal.
    private static func isStopped(pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let afterName = stat.range(of: ") ", options: .backwards)
        else { return false }
        return stat[afterName.upperBound...].first == "T"
    }

    private static func quoted(_ value: String) -> String {
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(escaped)\""
    }
}

/// Runs `body` with a fresh server and cleans the server up afterwards, whether `body`
/// returns or throws.
public func withRedisServer<Result>(
    password: String? = nil,
    extraConfig: [String] = [],
    logger: Logger = Logger(label: "test.redis-server"),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisServer) async throws -> Result
) async throws -> Result {
    let server = try await RedisServer.start(password: password, extraConfig: extraConfig, logger: logger)
    defer { server.cleanup() }
    return try await body(server)
}

/// A failure of the ``RedisServer`` fixture.
public struct RedisServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
