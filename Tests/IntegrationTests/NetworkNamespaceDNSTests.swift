import ChatService
import Foundation
import TestSupport
import Testing

/// Issue 14's report in its own setting: the binary in a network namespace this test makes
/// (`ip netns`), whose /etc/resolv.conf (`/etc/netns/NAME/resolv.conf`) names a nameserver on the
/// namespace's loopback that swallows every query (socat). Unlike `DNSStallTests` nothing is
/// configured for the service: it reads the system's resolver file, so any name still resolved
/// with a blocking `getaddrinfo` (which reads the same file) would stall the loop here and fail
/// the `/health` probes. Skipped where `ip netns` is not permitted (not root, no iproute2).
@Suite("DNS that never answers, in a network namespace", .serialized, .timeLimit(.minutes(2)))
struct NetworkNamespaceDNSTests {
    @Test(
        .enabled(
            if: NetworkNamespace.isPermitted,
            "ip netns is not permitted here (needs root and iproute2); DNSStallTests covers the same with DNS_RESOLV_CONF"
        ))
    func healthAnswersWhileTheSystemResolverNeverAnswers() async throws {
        let namespace = try NetworkNamespace(resolvConf: "nameserver 127.0.0.1\noptions timeout:5 attempts:2\n")
        defer { namespace.remove() }
        // The nameserver that never answers: receives and discards on 127.0.0.1:53.
        let swallower = try namespace.run(["socat", "-u", "UDP4-RECV:53,bind=127.0.0.1", "/dev/null"])
        defer { namespace.stop(swallower) }
        let httpPort = 18_000 + Int.random(in: 0..<2000) // the namespace is empty: any port is free
        let secret = "netns-secret"
        let service = try namespace.run(
            [
                "env", "REDIS_URL=redis://redis.never.test:6379/0",
                "PARTICIPANTS_API_URL=http://upstream.never.test:8090",
                "PARTICIPANTS_MAX_API_TIMEOUT=3s", "PARTICIPANTS_ENABLE_BACKGROUND_SYNC=false",
                "REDIS_CONNECT_TIMEOUT=1s",
                "HTTP_HOST=127.0.0.1", "HTTP_PORT=\(httpPort)", "GRPC_ENABLED=false", "JWT_SECRET=\(secret)",
                "CHAT_SQLITE_PATH=\(namespace.directory)/chat.sqlite3", ServiceProcess.binaryPath, "serve",
            ],
            log: "\(namespace.directory)/service.log")
        defer { namespace.stop(service) }
        let base = "http://127.0.0.1:\(httpPort)"
        try #require(
            await eventually(timeout: .seconds(20)) {
                await namespace.curl("\(base)/health", timeout: 1)?.status == 200
            },
            "no /health; log:\n\(namespace.log("service.log"))")

        let token = mintUserToken(subject: "alice", secret: secret, validFor: .seconds(600))
        let started = ContinuousClock.now
        let read = Task {
            await namespace.curl(
                "\(base)/v1/chats/chat-1/participants", headers: ["Authorization: Bearer \(token)"], timeout: 6)
        }
        let (probes, unanswered) = await probeRepeatedly(since: started, window: .milliseconds(2500), minimumProbes: 5)
        {
            await namespace.curl("\(base)/health", timeout: 1)?.status == 200
        }
        let answer = await read.value
        #expect(probes >= 5, "only \(probes) /health probes in 20 s")
        #expect(
            unanswered.isEmpty,
            "/health probes \(unanswered) of \(probes) got no 200 within 1 s; log:\n\(namespace.log("service.log"))")
        #expect(
            answer?.status == 503, "the cold read: \(String(describing: answer)); log:\n\(namespace.log("service.log"))"
        )
    }
}

/// A network namespace made with `ip netns add`, with its own resolver file, removed by
/// ``remove()``. Commands run in it with `ip netns exec`, which mounts that file over
/// /etc/resolv.conf for them.
final class NetworkNamespace: Sendable {
    let name: String
    let directory: String

    /// Whether this process may make namespaces (root with iproute2): checked once, by making one.
    static let isPermitted: Bool = {
        guard geteuid() == 0,
            FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
                || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
        else {
            return false
        }
        let probe = "chat-probe-\(getpid())"
        guard (try? command(["netns", "add", probe])) == 0 else { return false }
        _ = try? command(["netns", "del", probe])
        return true
    }()

    init(resolvConf: String) throws {
        name = "chat-dns-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/etc/netns/\(name)", withIntermediateDirectories: true)
        try resolvConf.write(toFile: "/etc/netns/\(name)/resolv.conf", atomically: true, encoding: .utf8)
        guard try Self.command(["netns", "add", name]) == 0,
            try Self.command(["-n", name, "link", "set", "lo", "up"]) == 0
        else {
            remove()
            throw NetworkNamespaceError(description: "ip netns add \(name) failed")
        }
    }

    /// Starts `arguments` in the namespace; output to `log` (or nowhere).
    func run(_ arguments: [String], log: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.ip)
        process.arguments = ["netns", "exec", name] + arguments
        if let log {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        return process
    }

    /// Ends a process started with ``run(_:log:)`` (`ip netns exec` execs it: the pid is its own).
    func stop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// An HTTP request with curl inside the namespace (its loopback is not the test's); nil when
    /// nothing answered within `timeout` seconds.
    func curl(_ url: String, headers: [String] = [], timeout: Int) async -> (status: Int, body: String)? {
        let arguments =
            ["curl", "-s", "-m", "\(timeout)", "-w", "\n%{http_code}"] + headers.flatMap { ["-H", $0] } + [url]
        let name = self.name
        let output = try? await offloadBlocking { () -> String in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: NetworkNamespace.ip)
            process.arguments = ["netns", "exec", name] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        guard let output, let newline = output.lastIndex(of: "\n"),
            let status = Int(output[output.index(after: newline)...]), status > 0
        else {
            return nil
        }
        return (status, String(output[..<newline]))
    }

    func log(_ file: String) -> String {
        (try? String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)) ?? ""
    }

    func remove() {
        _ = try? Self.command(["netns", "del", name])
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(name)")
        try? FileManager.default.removeItem(atPath: directory)
    }

    static var ip: String { FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip" }

    @discardableResult
    static func command(_ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ip)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

struct NetworkNamespaceError: Error, CustomStringConvertible {
    let description: String
}
