import ChatRuntime
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn` and reaped with `waitpid` by its owner.
///
/// Children are spawned from one thread that lives as long as the test process, so that
/// `setpriv --pdeathsig KILL` (which fires when the spawning *thread* ends) only kills them when
/// the test process itself dies, even by a crash. Every descriptor above stderr is closed in
/// the child, so no server inherits a test's sockets or another child's pipes.
struct ChildProcess: Sendable {
    let pid: pid_t

    enum Status: Sendable, Equatable {
        case running
        /// Reaped: the pid is no longer ours.
        case exited(code: Int32)
        /// Reaped: the pid is no longer ours.
        case signalled(Int32)
    }

    /// Spawns `executable` with stdin from /dev/null and stdout/stderr to the given descriptors
    /// (or /dev/null). With `killWithTestProcess`, runs it through `setpriv --pdeathsig KILL`.
    static func spawn(
        executable: String,
        arguments: [String],
        stdout: Int32? = nil,
        stderr: Int32? = nil,
        killWithTestProcess: Bool
    ) async throws -> ChildProcess {
        var executable = executable
        var arguments = arguments
        if killWithTestProcess, let setpriv = findExecutable("setpriv") {
            arguments = ["--pdeathsig", "KILL", "--", executable] + arguments
            executable = setpriv
        }
        let argv = [executable] + arguments
        let pid = try await spawnerLoop.run { [executable] in
            try spawnNow(executable: executable, argv: argv, stdout: stdout, stderr: stderr)
        }
        return ChildProcess(pid: pid)
    }

    /// Checks without blocking whether the child has exited, and reaps it if so.
    func status() -> Status {
        var rawStatus: Int32 = 0
        while true {
            let result = waitpid(pid, &rawStatus, WNOHANG)
            if result == 0 { return .running }
            if result == pid { break }
            if errno == EINTR { continue }
            // ECHILD: already reaped (or SIGCHLD ignored); either way it is gone.
            return .exited(code: -1)
        }
        let signal = rawStatus & 0x7F
        if signal == 0 { return .exited(code: (rawStatus >> 8) & 0xFF) }
        return .signalled(signal)
    }

    /// Polls until the child has exited and is reaped, for at most `timeout`. Returns the final
    /// status, or `.running` when it is still alive.
    func waitForExit(within timeout: Duration) async -> Status {
        let deadline = ContinuousClock.now + timeout
        while true {
            let current = status()
            if current != .running || ContinuousClock.now >= deadline { return current }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Same as ``waitForExit(within:)`` but blocking, for deinit and other synchronous paths.
    func waitForExitBlocking(within timeout: Duration) -> Status {
        let deadline = ContinuousClock.now + timeout
        while true {
            let current = status()
            if current != .running || ContinuousClock.now >= deadline { return current }
            usleep(5_000)
        }
    }

    /// Sends `signal`. Only valid before the child was reaped (a zombie keeps its pid).
    func send(_ signal: Int32) {
        kill(pid, signal)
    }

    static func findExecutable(_ name: String, fallback: String? = nil) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        if let fallback, access(fallback, X_OK) == 0 { return fallback }
        return nil
    }
}

/// The thread children are spawned from; see ``ChildProcess``.
private let spawnerLoop = EventLoop(name: "test-support-spawner")

private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

/// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+), which Swift's Glibc module does
/// not expose.
private let addCloseFrom: AddCloseFrom? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
        return nil
    }
    return unsafeBitCast(symbol, to: AddCloseFrom.self)
}()

struct SpawnError: Error, CustomStringConvertible {
    let description: String
}

private func spawnNow(executable: String, argv: [String], stdout: Int32?, stderr: Int32?) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    if let stdout {
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    } else {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    }
    if let stderr {
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    } else {
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    }
    _ = addCloseFrom?(&actions, 3)

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var emptyMask = sigset_t()
    sigemptyset(&emptyMask)
    var defaultSignals = sigset_t()
    sigemptyset(&defaultSignals)
    for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2] {
        sigaddset(&defaultSignals, signal)
    }
    posix_spawnattr_setsigmask(&attributes, &emptyMask)
    posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
    cArguments.append(nil)
    defer { cArguments.forEach { free($0) } }
    var pid: pid_t = 0
    let result = posix_spawn(&pid, executable, &actions, &attributes, cArguments, environ)
    guard result == 0 else {
        throw SpawnError(description: "posix_spawn \(executable) failed: \(String(cString: strerror(result)))")
    }
    return pid
}

extension ChildProcess {
    /// The outcome of ``run(executable:arguments:timeout:)``.
    struct Output: Sendable {
        let status: Status
        let standardOutput: String
        let standardError: String
    }

    /// Runs a short-lived program to completion and captures its output; kills it and throws
    /// when it takes longer than `timeout`.
    static func run(executable: String, arguments: [String], timeout: Duration) async throws -> Output {
        let standardOutput = try Pipe()
        let standardError = try Pipe()
        defer {
            standardOutput.closeAll()
            standardError.closeAll()
        }
        let child = try await spawn(
            executable: executable,
            arguments: arguments,
            stdout: standardOutput.writeEnd,
            stderr: standardError.writeEnd,
            killWithTestProcess: true
        )
        standardOutput.closeWriteEnd()
        standardError.closeWriteEnd()

        let deadline = ContinuousClock.now + timeout
        while !(standardOutput.reachedEnd && standardError.reachedEnd) {
            let outputProgressed = standardOutput.readAvailable()
            let errorProgressed = standardError.readAvailable()
            if outputProgressed || errorProgressed { continue }
            if ContinuousClock.now >= deadline {
                child.send(SIGKILL)
                _ = await child.waitForExit(within: .seconds(5))
                throw SpawnError(
                    description: "\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        var status = await child.waitForExit(within: .seconds(5))
        if status == .running {
            child.send(SIGKILL)
            status = await child.waitForExit(within: .seconds(5))
        }
        return Output(
            status: status,
            standardOutput: String(decoding: standardOutput.data, as: UTF8.self),
            standardError: String(decoding: standardError.data, as: UTF8.self)
        )
    }

    /// A close-on-exec pipe whose read end is drained without blocking.
    private final class Pipe {
        private(set) var readEnd: Int32
        private(set) var writeEnd: Int32
        private(set) var data: [UInt8] = []
        private(set) var reachedEnd = false

        init() throws {
            var descriptors: [Int32] = [-1, -1]
            guard pipe(&descriptors) == 0 else {
                throw SpawnError(description: "pipe failed: errno \(errno)")
            }
            readEnd = descriptors[0]
            writeEnd = descriptors[1]
            // (pipe2 is not exposed to Swift.) Children spawned in between still only get
            // descriptors 0-2: every spawn closes the rest.
            _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        }

        /// Reads what is available; true when it read something or reached the end.
        func readAvailable() -> Bool {
            guard !reachedEnd else { return false }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if count > 0 {
                data += buffer[..<count]
                return true
            }
            if count == 0 || (errno != EAGAIN && errno != EINTR) {
                reachedEnd = true
                return true
            }
            return false
        }

        func closeWriteEnd() {
            if writeEnd >= 0 { close(writeEnd) }
            writeEnd = -1
        }

        func closeAll() {
            closeWriteEnd()
            if readEnd >= 0 { close(readEnd) }
            readEnd = -1
        }
    }
}
