public import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A `chat-service` binary running as a subprocess, for tests of the real process: signals,
/// exit codes, environment handling, several processes and SIGKILL. Output goes to a temp file
/// readable with ``output()``. ``serve(environment:)`` and ``stubUpstream(_:)`` start it the way
/// every suite does; ``InProcessService`` is its in-process twin, with the same defaults
/// (``TestServiceEnvironment``).
public final class ServiceProcess: @unchecked Sendable {
    // @unchecked Sendable: `process` is only touched through Foundation's thread-safe Process
    // API; the log path and the owned SQLite path are immutable.
    public let process: Process
    public let logPath: URL
    /// The environment the process was started with (PATH and the chat store path included).
    public let environment: [String: String]
    /// The chat store file this process got because the caller named none; removed with it.
    private let ownedSQLitePath: String?

    /// The binary under test: $CHAT_SERVICE_BINARY, or `chat-service` beside the test bundle.
    public static var binaryPath: String {
        if let path = ProcessInfo.processInfo.environment["CHAT_SERVICE_BINARY"], !path.isEmpty { return path }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        // Inside .../debug/chat-servicePackageTests.xctest on Linux the runner is the bundle itself.
        if directory.lastPathComponent.hasSuffix(".xctest") { directory.deleteLastPathComponent() }
        return directory.appendingPathComponent("chat-service").path
    }

    /// Starts `chat-service <arguments>` with exactly `environment` (plus PATH).
    public init(arguments: [String] = ["serve"], environment: [String: String]) throws {
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("chat-service-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logPath.path, contents: nil)
        let log = try FileHandle(forWritingTo: logPath)
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binaryPath)
        process.arguments = arguments
        var env = environment
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        // The embedded chat store's default file is ./chat-service.sqlite3: keep it out of the
        // working directory.
        if env["CHAT_SQLITE_PATH"] == nil {
            let path = temporarySQLitePath()
            env["CHAT_SQLITE_PATH"] = path
            ownedSQLitePath = path
        } else {
            ownedSQLitePath = nil
        }
        // A sanitized binary (make sanitize-*) follows the same sanitizer options as the tests.
        for name in ["ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS"] where env[name] == nil {
            env[name] = ProcessInfo.processInfo.environment[name]
        }
        process.environment = env
        self.environment = env
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: logPath)
        if let ownedSQLitePath { removeTemporarySQLite(ownedSQLitePath) }
    }

    /// Everything the process wrote so far.
    public func output() -> String {
        (try? String(contentsOf: logPath, encoding: .utf8)) ?? ""
    }

    public func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits up to `timeout` for the process to exit; returns its status, or nil if still running.
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.isRunning ? nil : process.terminationStatus
    }
}

/// A minimal HTTP GET for tests: status and body, bounded by `timeout`; nil when nothing answered.
public func httpGet(_ url: String, headers: [String: String] = [:], timeout: Duration = .seconds(2)) async -> (status: Int, body: String)? {
    await httpRequest("GET", url, headers: headers, timeout: timeout)
}

/// A minimal HTTP request for tests; nil when nothing answered within `timeout`.
public func httpRequest(
    _ method: String, _ url: String, headers: [String: String] = [:], body: Data? = nil, timeout: Duration = .seconds(2)
) async -> (status: Int, body: String)? {
    guard let url = URL(string: url) else { return nil }
    var request = URLRequest(url: url, timeoutInterval: Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18)
    request.httpMethod = method
    request.httpBody = body
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    let session = URLSession(configuration: .ephemeral)
    defer { session.finishTasksAndInvalidate() }
    guard let (data, response) = try? await session.data(for: request), let http = response as? HTTPURLResponse else {
        return nil
    }
    return (http.statusCode, String(decoding: data, as: UTF8.self))
}
