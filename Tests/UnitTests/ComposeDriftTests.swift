import Actors
import Foundation
import Testing

@testable import ChatService

/// The compose stack (compose/) against the code: the chat-service environment lists exactly
/// the variables the service reads, with their defaults; the image runs as non-root with an
/// exec-form entrypoint; `docker-compose config` accepts the file (when docker-compose is
/// installed; CI installs it).
@Suite("Compose drift")
struct ComposeDriftTests {
    static let repositoryRoot = ConfigurationDocsTests.repositoryRoot
    static let composePath = repositoryRoot.appendingPathComponent("compose/docker-compose.yml").path
    static let dockerfilePath = repositoryRoot.appendingPathComponent("compose/Dockerfile").path

    /// Where the compose stack's value differs from the service's default, and why: the other
    /// services of the stack, and demo secrets (overridable from the shell).
    static let composeOverrides: [String: String] = [
        "REDIS_URL": "redis://redis:6379/0",
        "PARTICIPANTS_API_URL": "http://stub-upstream:8090",
        "ADMIN_TOKEN": "dev-admin-token",
        "JWT_SECRET": "dev-jwt-secret",
        "CHAT_STORE": "postgres",
        "CHAT_POSTGRES_URL": "postgres://chat:chat@postgres:5432/chat",
    ]

    static func composeText() throws -> String {
        try String(contentsOfFile: composePath, encoding: .utf8)
    }

    /// The chat-service environment as written: name and the value the stack uses when the shell
    /// sets nothing (`${NAME:-fallback}` counts as its fallback).
    static func composeEnvironment(_ text: String) throws -> [(name: String, value: String)] {
        let service = try #require(
            SimpleYAML.block(at: ["services", "chat-service"], in: text), "no services.chat-service")
        let environment = try #require(
            SimpleYAML.block(at: ["environment"], in: service), "chat-service has no environment")
        return SimpleYAML.pairs(in: environment).map { ($0.key, SimpleYAML.fallback(of: $0.value)) }
    }

    // MARK: Environment

    @Test func composeEnvironmentListsExactlyTheVariablesTheServiceReadsInTableOrder() throws {
        let environment = try Self.composeEnvironment(Self.composeText())
        #expect(environment.map(\.name) == EnvironmentVariable.all.map(\.name))
        #expect(Set(environment.map(\.name)).count == environment.count, "a variable is listed twice")
    }

    @Test func composeValuesAreTheDefaultsExceptTheStacksOwnAddressesAndDemoSecrets() throws {
        let values = Dictionary(try Self.composeEnvironment(Self.composeText()).map { ($0.name, $0.value) }) {
            first, _ in first
        }
        for variable in EnvironmentVariable.all {
            let expected = Self.composeOverrides[variable.name] ?? variable.defaultValue ?? ""
            #expect(values[variable.name] == expected, "\(variable.name) in compose/docker-compose.yml")
        }
        #expect(Set(Self.composeOverrides.keys).isSubset(of: Set(EnvironmentVariable.all.map(\.name))))
    }

    @Test func composeEnvironmentIsAValidConfiguration() throws {
        let environment = Dictionary(try Self.composeEnvironment(Self.composeText()).map { ($0.name, $0.value) }) {
            first, _ in first
        }
        let configuration = try ServiceConfiguration(environment: environment)
        #expect(configuration.http.port == 8082)
    }

    @Test func readmeTableListsExactlyTheVariablesTheServiceReads() throws {
        let table = try ConfigurationDocsTests.readmeTable()
        #expect(table.map(\.name) == EnvironmentVariable.all.map(\.name))
    }

    /// The variables the code reads by name are the ones listed: nothing read directly from the
    /// environment behind the list's back, and nothing listed that no code reads.
    @Test func sourcesReadExactlyTheListedVariables() throws {
        let sources = Self.repositoryRoot.appendingPathComponent("Sources")
        let enumerator = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        let patterns = [
            // The name may sit on the next line, as swift-format breaks long calls.
            #/env\.[a-zA-Z]+\(\s*"([A-Z][A-Z0-9_]*)"/#,
            #/environment\["([A-Z][A-Z0-9_]*)"\]/#,
            #/getenv\("([A-Z][A-Z0-9_]*)"\)/#,
        ]
        var read: Set<String> = []
        for case let file as URL in enumerator where file.pathExtension == "swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for pattern in patterns {
                for match in text.matches(of: pattern) { read.insert(String(match.output.1)) }
            }
        }
        #expect(read == Set(EnvironmentVariable.all.map(\.name)))
    }

    // MARK: Compose services

    @Test func chatServicePublishesNoHostPortSoItScales() throws {
        let service = try #require(SimpleYAML.block(at: ["services", "chat-service"], in: Self.composeText()))
        #expect(SimpleYAML.block(at: ["ports"], in: service) == nil, "a fixed host port clashes with --scale")
        #expect(SimpleYAML.block(at: ["container_name"], in: service) == nil, "a fixed name clashes with --scale")
    }

    @Test func chatServiceWaitsForAHealthyRedisAndIsHealthChecked() throws {
        let service = try #require(SimpleYAML.block(at: ["services", "chat-service"], in: Self.composeText()))
        let redis = try #require(SimpleYAML.block(at: ["depends_on", "redis"], in: service))
        #expect(SimpleYAML.pairs(in: redis).contains { $0.key == "condition" && $0.value == "service_healthy" })
        let healthcheck = try #require(SimpleYAML.block(at: ["healthcheck"], in: service))
        #expect(healthcheck.contains("/health"))
    }

    @Test func stopGracePeriodLeavesTheDrainTimeToFinish() throws {
        let text = try Self.composeText()
        let service = try #require(SimpleYAML.block(at: ["services", "chat-service"], in: text))
        let grace = try #require(SimpleYAML.pairs(in: service).first { $0.key == "stop_grace_period" }?.value)
        let shutdown = try #require(try Self.composeEnvironment(text).first { $0.name == "SHUTDOWN_TIMEOUT" }?.value)
        let graceDuration = try #require(parseDuration(grace))
        let shutdownDuration = try #require(parseDuration(shutdown))
        #expect(graceDuration > shutdownDuration, "Docker would SIGKILL the service in the middle of its drain")
    }

    // MARK: Dockerfile

    @Test func runtimeStageRunsAsNonRootWithAnExecFormEntrypoint() throws {
        let dockerfile = try Dockerfile(text: String(contentsOfFile: Self.dockerfilePath, encoding: .utf8))
        let runtime = try #require(dockerfile.stages.last)
        #expect(runtime.image == "debian:bookworm-slim")

        let user = try #require(runtime.last("USER"), "the runtime stage sets no USER: it would run as root")
        let name = user.split(separator: ":").first.map(String.init) ?? user
        #expect(name != "root" && name != "0", "USER \(user)")

        let entrypoint = try #require(runtime.last("ENTRYPOINT"))
        let arguments = try #require(
            (try? JSONSerialization.jsonObject(with: Data(entrypoint.utf8))) as? [String],
            "ENTRYPOINT \(entrypoint) is not exec form: SIGTERM would go to a shell")
        let shells: Set<String> = ["sh", "bash", "dash", "/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/env"]
        #expect(!shells.contains(arguments.first ?? ""), "ENTRYPOINT \(entrypoint) wraps the service in a shell")
        #expect(!arguments.contains("-c"))

        #expect(runtime.last("HEALTHCHECK")?.contains("/health") == true)
        #expect(runtime.all("EXPOSE").contains { $0.split(separator: " ").contains("8082") })
    }

    @Test func buildStageUsesAPinnedSwiftImageOfTheSameDebianRelease() throws {
        let dockerfile = try Dockerfile(text: String(contentsOfFile: Self.dockerfilePath, encoding: .utf8))
        let build = try #require(dockerfile.stages.first)
        let image = build.image
        let match = try #require(image.wholeMatch(of: #/swift:(\d+)\.(\d+)(\.\d+)?-bookworm/#), "build image \(image)")
        let version = (Int(match.output.1) ?? 0, Int(match.output.2) ?? 0)
        #expect(version >= (6, 1), "Swift 6.1 or later: \(image)")
    }

    // MARK: docker-compose config

    static let dockerCompose = findExecutable("docker-compose")

    @Test(
        .enabled(
            if: dockerCompose != nil, "docker-compose is not installed (apt-get install docker-compose); CI installs it"
        ))
    func dockerComposeAcceptsTheFileWithAndWithoutTheSentinelProfile() async throws {
        let executable = try #require(Self.dockerCompose)
        let plain = try await Self.run(executable, ["-f", Self.composePath, "config"])
        #expect(plain.status == 0, "docker-compose config failed:\n\(plain.output)")
        let normalized = try #require(
            SimpleYAML.block(at: ["services", "chat-service", "environment"], in: plain.output))
        #expect(Set(SimpleYAML.pairs(in: normalized).map(\.key)) == Set(EnvironmentVariable.all.map(\.name)))

        let sentinel = try await Self.run(
            executable, ["-f", Self.composePath, "--profile", "sentinel", "config", "--services"])
        #expect(sentinel.status == 0, "docker-compose --profile sentinel config failed:\n\(sentinel.output)")
        let services = Set(sentinel.output.split(separator: "\n").map(String.init))
        #expect(
            services.isSuperset(of: ["redis", "chat-service", "stub-upstream", "lb", "redis-primary", "redis-replica"]))
    }

    /// Runs `executable` with a minimal environment (so no exported ADMIN_TOKEN and the like
    /// changes the result), its output in a temporary file, for at most 60 s.
    static func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent(
            "compose-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outputURL) }
        let output = try FileHandle(forWritingTo: outputURL)
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": FileManager.default.temporaryDirectory.path,
        ]
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = ContinuousClock.now + .seconds(60)
        while process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20)) // polls for the exit
        }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            return (-1, "timed out after 60 s")
        }
        return (process.terminationStatus, (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "")
    }

    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// Just enough YAML for compose files: nested block mappings by indentation, `key: value`
/// scalars, comments. No flow collections beyond what is returned as text, no anchors resolved.
enum SimpleYAML {
    /// The lines nested under `path` (each key one level deeper than the last), or nil.
    static func block(at path: [String], in text: String) -> String? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for key in path {
            guard let start = lines.firstIndex(where: { isKeyLine($0, key) && indent($0) == minimumIndent(lines) })
            else {
                return nil
            }
            let keyIndent = indent(lines[start])
            var body: [String] = []
            for line in lines[(start + 1)...] {
                if isBlankOrComment(line) { continue }
                if indent(line) <= keyIndent { break }
                body.append(line)
            }
            lines = body
        }
        return lines.joined(separator: "\n")
    }

    /// The `key: value` lines directly in `block` (its least indented level), values unquoted
    /// and without trailing comments.
    static func pairs(in block: String) -> [(key: String, value: String)] {
        let lines = block.split(separator: "\n").map(String.init).filter { !isBlankOrComment($0) }
        let level = minimumIndent(lines)
        return lines.filter { indent($0) == level }.compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard let colon = trimmed.firstIndex(of: ":") else { return nil }
            let key = String(trimmed[..<colon])
            return (unquote(key), unquote(stripComment(String(trimmed[trimmed.index(after: colon)...]))))
        }
    }

    /// `${NAME:-fallback}` → `fallback`, `${NAME}` → ``; anything else as is.
    static func fallback(of value: String) -> String {
        if let match = value.wholeMatch(of: #/\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-(.*))?\}/#) {
            return match.output.1.map(String.init) ?? ""
        }
        return value
    }

    private static func isKeyLine(_ line: String, _ key: String) -> Bool {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        return trimmed == "\(key):" || trimmed.hasPrefix("\(key): ") || trimmed.hasPrefix("\(key):#")
    }

    private static func isBlankOrComment(_ line: String) -> Bool {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty || trimmed.hasPrefix("#")
    }

    private static func indent(_ line: String) -> Int {
        line.prefix { $0 == " " }.count
    }

    private static func minimumIndent(_ lines: [String]) -> Int {
        lines.filter { !isBlankOrComment($0) }.map(indent).min() ?? 0
    }

    private static func stripComment(_ value: String) -> String {
        var quote: Character?
        var previous: Character = " "
        for index in value.indices {
            let character = value[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "#" && previous == " " {
                return String(value[..<index]).trimmingCharacters(in: .whitespaces)
            }
            previous = character
        }
        return value.trimmingCharacters(in: .whitespaces)
    }

    private static func unquote(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.count >= 2, let first = trimmed.first, first == "\"" || first == "'", trimmed.last == first else {
            return trimmed
        }
        return String(trimmed.dropFirst().dropLast())
    }
}

/// A Dockerfile cut into stages of instructions (continuation lines joined, comments dropped),
/// with `ARG` defaults before the first `FROM` substituted into the stages' images.
struct Dockerfile {
    struct Stage {
        var image: String
        var instructions: [(keyword: String, arguments: String)]

        func all(_ keyword: String) -> [String] {
            instructions.filter { $0.keyword == keyword }.map(\.arguments)
        }

        func last(_ keyword: String) -> String? {
            all(keyword).last
        }
    }

    var stages: [Stage] = []

    init(text: String) throws {
        var logical: [String] = []
        var current = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("#") || (trimmed.isEmpty && current.isEmpty) { continue }
            if trimmed.hasSuffix("\\") {
                current += trimmed.dropLast() + " "
            } else {
                current += trimmed
                if !current.isEmpty { logical.append(current) }
                current = ""
            }
        }
        var globalArguments: [String: String] = [:]
        for line in logical {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            let keyword = parts[0].uppercased()
            let arguments = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
            if keyword == "FROM" {
                var image = arguments.split(separator: " ").first.map(String.init) ?? ""
                for (name, value) in globalArguments {
                    image = image.replacingOccurrences(of: "${\(name)}", with: value).replacingOccurrences(
                        of: "$\(name)", with: value)
                }
                stages.append(Stage(image: image, instructions: []))
            } else if stages.isEmpty {
                if keyword == "ARG", let equals = arguments.firstIndex(of: "=") {
                    globalArguments[String(arguments[..<equals])] = String(arguments[arguments.index(after: equals)...])
                }
            } else {
                stages[stages.count - 1].instructions.append((keyword, arguments))
            }
        }
    }
}
