import ChatRuntime
import Foundation
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real PostgreSQL server (Debian's `postgresql` binaries) on a free 127.0.0.1 port with a
/// temporary data directory, trust authentication and durability off (tests need speed, not
/// crash safety), for integration tests.
///
/// PostgreSQL refuses to run as root, and CI runs as root: then the directory is handed to the
/// `postgres` user (created by the Debian package) and every binary runs as that user through
/// `setpriv`, which execs directly (no forking wrapper), so the server's pid is the one we
/// track and `--pdeathsig KILL` reaches it when the test process dies. Missing binaries are an
/// error with the package to install, never a silent skip. Every wait is bounded.
public final class PostgresServer: Sendable {
    /// The port it listens on (fixed once ``start(logger:)`` returns).
    public var port: Int { currentPort.load(ordering: .acquiring) }
    private let currentPort: Atomic<Int>
    /// Holds `data/` and the unix socket.
    public let directory: String
    private let binaries: String
    private let runAsPostgres: Bool
    private let process = AnnotatedMutex<ChildProcess?>(nil)
    private let cleanedUp = Atomic<Bool>(false)

    public static let startTimeout: Duration = .seconds(30)

    /// Runs initdb, starts the server and waits until it accepts connections. Retries on a fresh
    /// port when another process took the chosen one.
    public static func start(logger: Logger = Logger(label: "test.postgres")) async throws -> PostgresServer {
        guard let binaries = findBinaries() else {
            throw PostgresServerError(
                "PostgreSQL binaries not found (looked for /usr/lib/postgresql/*/bin/postgres): apt-get install postgresql"
            )
        }
        let server = try PostgresServer(binaries: binaries)
        do {
            try await server.initializeCluster()
        } catch {
            server.cleanup()
            throw error
        }
        var failures: [String] = []
        for attempt in 0..<3 {
            if attempt > 0 { server.currentPort.store(freeLoopbackPort(), ordering: .releasing) }
            do {
                try await server.launch(port: server.port)
                logger.debug("postgres started", metadata: ["postgres.port": "\(server.port)"])
                return server
            } catch {
                failures.append("\(error)")
            }
        }
        server.cleanup()
        throw PostgresServerError("postgres did not start: \(failures.joined(separator: "; "))")
    }

    private init(binaries: String) throws {
        self.binaries = binaries
        currentPort = Atomic(freeLoopbackPort())
        runAsPostgres = geteuid() == 0
        let temporaryDirectory =
            NSTemporaryDirectory().hasSuffix("/") ? NSTemporaryDirectory() : NSTemporaryDirectory() + "/"
        var template = Array("\(temporaryDirectory)postgres-test-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw PostgresServerError("mkdtemp failed: errno \(errno)") }
        self.directory = String(cString: created)
    }

    deinit {
        cleanup()
    }

    /// `postgres://postgres@127.0.0.1:port/database` (trust authentication, no password).
    public func url(database: String = "postgres") -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(database)"
    }

    /// Creates a database and returns its URL: one per test keeps tests independent on one server.
    public func createDatabase(_ name: String = "test_\(UInt32.random(in: 0...UInt32.max))") async throws -> String {
        _ = try await psql("CREATE DATABASE \(name)")
        return url(database: name)
    }

    /// Runs one SQL command through `psql` (bounded to 20 s); returns its unaligned output.
    public func psql(_ command: String, database: String = "postgres") async throws -> String {
        let output = try await ChildProcess.run(
            executable: binaries + "/psql",
            arguments: [
                "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", database, "-c",
                command,
            ],
            timeout: .seconds(20))
        guard output.status == .exited(code: 0) else {
            throw PostgresServerError("psql \(command) ended with \(output.status): \(output.standardError)")
        }
        return output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops the server (fast shutdown, SIGINT; SIGKILL after 10 s).
    public func stop() async {
        guard let child = process.withLock({ $0 }) else { return }
        child.send(SIGINT)
        var status = await child.waitForExit(within: .seconds(10))
        if status == .running {
            child.send(SIGKILL)
            status = await child.waitForExit(within: .seconds(5))
        }
        if status != .running { process.withLock { if $0?.pid == child.pid { $0 = nil } } }
    }

    /// Kills the server and removes its directory. Idempotent; also run by `deinit`.
    public func cleanup() {
        guard !cleanedUp.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let child = process.withLock { process in
            defer { process = nil }
            return process
        }
        if let child {
            // SIGKILL leaves shared memory to the kernel; SIGQUIT first lets the postmaster end
            // its backends (immediate shutdown), then SIGKILL bounds the wait.
            child.send(SIGQUIT)
            if child.waitForExitBlocking(within: .seconds(5)) == .running {
                child.send(SIGKILL)
                _ = child.waitForExitBlocking(within: .seconds(5))
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The end of the server's log, for failure messages.
    public func logTail(maxBytes: Int = 2000) -> String {
        guard let data = FileManager.default.contents(atPath: "\(directory)/postgres.log") else { return "" }
        return String(decoding: data.suffix(maxBytes), as: UTF8.self)
    }

    // MARK: Private

    private static func findBinaries() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        return versions.map { "\(root)/\($0)/bin" }
            .first { FileManager.default.isExecutableFile(atPath: "\($0)/postgres") }
    }

    /// `setpriv` arguments that run `executable` as the postgres user when we are root.
    private func command(_ executable: String, _ arguments: [String], pdeathsig: Bool) -> (String, [String]) {
        var prefix: [String] = []
        if runAsPostgres { prefix += ["--reuid=postgres", "--regid=postgres", "--clear-groups"] }
        if pdeathsig { prefix += ["--pdeathsig", "KILL"] }
        guard !prefix.isEmpty, let setpriv = ChildProcess.findExecutable("setpriv", fallback: "/usr/bin/setpriv") else {
            return (executable, arguments)
        }
        return (setpriv, prefix + ["--", executable] + arguments)
    }

    private func initializeCluster() async throws {
        if runAsPostgres {
            let chown = try await ChildProcess.run(
                executable: "/bin/chown", arguments: ["-R", "postgres:postgres", directory], timeout: .seconds(10))
            guard chown.status == .exited(code: 0) else {
                throw PostgresServerError("chown postgres \(directory) failed: \(chown.standardError)")
            }
        }
        let (executable, arguments) = command(
            binaries + "/initdb",
            ["-D", "\(directory)/data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            pdeathsig: false)
        let output = try await ChildProcess.run(executable: executable, arguments: arguments, timeout: .seconds(60))
        guard output.status == .exited(code: 0) else {
            throw PostgresServerError(
                "initdb ended with \(output.status): \(output.standardError)\(output.standardOutput)")
        }
    }

    private func launch(port: Int) async throws {
        let log = open("\(directory)/postgres.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard log >= 0 else { throw PostgresServerError("cannot open postgres.log: errno \(errno)") }
        defer { close(log) }
        if runAsPostgres { fchown(log, Self.postgresUID() ?? 0, Self.postgresGID() ?? 0) }
        let (executable, arguments) = command(
            binaries + "/postgres",
            [
                "-D", "\(directory)/data", "-p", "\(port)", "-k", directory,
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=100",
            ],
            pdeathsig: true)
        let child = try await ChildProcess.spawn(
            executable: executable, arguments: arguments, stdout: log, stderr: log, killWithTestProcess: false)
        process.withLock { $0 = child }
        let deadline = ContinuousClock.now + Self.startTimeout
        while true {
            let status = child.status()
            if status != .running {
                process.withLock { $0 = nil }
                throw PostgresServerError(
                    "postgres on port \(port) exited at start (\(status)): \(logTail(maxBytes: 800))")
            }
            let ready = try? await ChildProcess.run(
                executable: binaries + "/pg_isready",
                arguments: ["-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-t", "2"],
                timeout: .seconds(5))
            if ready?.status == .exited(code: 0) { return }
            if ContinuousClock.now >= deadline {
                child.send(SIGKILL)
                _ = await child.waitForExit(within: .seconds(5))
                process.withLock { $0 = nil }
                throw PostgresServerError(
                    "postgres on port \(port) was not ready within \(Self.startTimeout): \(logTail(maxBytes: 800))")
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private static func postgresUID() -> uid_t? { getpwnam("postgres")?.pointee.pw_uid }
    private static func postgresGID() -> gid_t? { getpwnam("postgres")?.pointee.pw_gid }
}

/// Runs `body` with a fresh server, cleaned up afterwards whether `body` returns or throws.
public func withPostgresServer<Result>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (PostgresServer) async throws -> Result
) async throws -> Result {
    let server = try await PostgresServer.start()
    defer { server.cleanup() }
    return try await body(server)
}

/// A failure of the ``PostgresServer`` fixture.
public struct PostgresServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
