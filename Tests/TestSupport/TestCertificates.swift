import Foundation

/// Certificates made with the `openssl` command at test time, in a temporary folder: a test CA,
/// a server certificate it signed for `localhost` (and optionally other names), and a second CA
/// that signed nothing the server presents. Remove with ``remove()``.
public struct TestCertificates: Sendable {
    public let directory: String
    /// The test CA's certificate (PEM): what PARTICIPANTS_API_CA_FILE names to trust the server.
    public var caFile: String { directory + "/ca.pem" }
    /// A CA the server's certificate does not chain to.
    public var otherCAFile: String { directory + "/other-ca.pem" }
    public var serverCertificate: String { directory + "/server.pem" }
    public var serverKey: String { directory + "/server.key" }

    /// - Parameter serverNames: the server certificate's subjectAltName DNS names.
    public static func make(serverNames: [String] = ["localhost"]) throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("certs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        let names = serverNames.map { "DNS:\($0)" }.joined(separator: ",")
        try "subjectAltName=\(names)\n".write(toFile: directory + "/server.ext", atomically: true, encoding: .utf8)
        for ca in ["ca", "other-ca"] {
            try openssl(
                in: directory,
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", "\(ca).key", "-out", "\(ca).pem", "-days", "2", "-subj", "/CN=chat-service \(ca)",
                ])
        }
        try openssl(
            in: directory,
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=\(serverNames.first ?? "localhost")",
            ])
        try openssl(
            in: directory,
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
            ])
        return certificates
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func openssl(in directory: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestCertificatesError(
                "openssl \(arguments.joined(separator: " ")) failed: \(String(decoding: output, as: UTF8.self))")
        }
    }
}

public struct TestCertificatesError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// A TLS terminator in front of a plain-HTTP server: `socat` with OpenSSL, listening on
/// 127.0.0.1, forwarding every connection to `127.0.0.1:<backend>`. A TLS implementation that
/// is not ours, so a test of the client does not check our TLS code against itself. Counts the
/// connections it accepted, from its log.
public final class TLSTerminator: Sendable {
    public let port: Int
    private let child: ChildProcess
    private let logPath: String

    /// - Parameter idleTimeout: closes a connection idle this long (with a TLS close_notify),
    ///   as a server's keep-alive timeout does; nil keeps connections open.
    public static func start(backendPort: Int, certificates: TestCertificates, idleTimeout: Duration? = nil)
        async throws -> TLSTerminator
    {
        guard let socat = ChildProcess.findExecutable("socat", fallback: "/usr/bin/socat") else {
            throw TestCertificatesError("socat is not installed (.ci/run installs it)")
        }
        let port = freeLoopbackPort()
        let logPath = certificates.directory + "/socat-\(port).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = open(logPath, O_WRONLY | O_APPEND | O_CLOEXEC)
        defer { close(log) }
        let child = try await ChildProcess.spawn(
            executable: socat,
            arguments: ["-d", "-d"]
                + (idleTimeout.map {
                    ["-T", "\(Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18)"]
                } ?? []) + [
                    "OPENSSL-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork,cert=\(certificates.serverCertificate),key=\(certificates.serverKey),verify=0",
                    "TCP:127.0.0.1:\(backendPort)",
                ],
            stderr: log, killWithTestProcess: true)
        let terminator = TLSTerminator(port: port, child: child, logPath: logPath)
        guard await eventually(timeout: .seconds(10), { terminator.log().contains("listening on") }) else {
            terminator.stop()
            throw TestCertificatesError("socat did not start listening: \(terminator.log())")
        }
        return terminator
    }

    private init(port: Int, child: ChildProcess, logPath: String) {
        self.port = port
        self.child = child
        self.logPath = logPath
    }

    /// Connections that ended (their socat child exited).
    public var closedConnections: Int {
        log().components(separatedBy: "exiting with status").count - 1
    }

    /// TLS connections accepted so far.
    public var acceptedConnections: Int {
        log().components(separatedBy: "accepting connection from").count - 1
    }

    public func log() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    public func stop() {
        child.send(SIGKILL)
        _ = child.waitForExitBlocking(within: .seconds(5))
    }
}
