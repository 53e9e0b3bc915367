import Actors
public import Logging

/// The command line of `chat-service stub-upstream`, as text and numbers, checked and turned
/// into ``StubUpstream/Settings``. Lives here, not in the CLI, so it is testable.
public struct StubUpstreamOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8090
    public var chats = 1000
    public var participantsPerChat = 20
    public var token: String?
    public var latency = "0ms"
    public var latencyJitter = "0ms"
    public var errorRate = 0.0
    public var rate429 = 0.0
    public var retryAfter = 1
    public var malformedRate = 0.0
    public var malformedKind = "mixed"
    public var partialRate = 0.0
    public var hang = false
    public var maxHang = "1h"
    public var seed: UInt64 = 1
    public var maxBatch = 1000
    public var logLevel = "info"

    public init() {}

    /// Why the options were refused, naming the flag.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The stub's settings and log level, or the first problem found.
    public func resolved() throws(Invalid) -> (settings: StubUpstream.Settings, logLevel: Logger.Level) {
        for (name, rate) in [("--error-rate", errorRate), ("--rate-429", rate429), ("--malformed-rate", malformedRate), ("--partial-rate", partialRate)] {
            guard (0...1).contains(rate) else { throw Invalid(description: "\(name) must be within 0...1, got \(rate)") }
        }
        func duration(_ name: String, _ text: String) throws(Invalid) -> Duration {
            guard let value = parseDuration(text) else {
                throw Invalid(description: "\(name) must be a duration such as 250ms or 2s, got \(text)")
            }
            return value
        }
        var faults = StubFaults()
        faults.latency = try duration("--latency", latency)
        faults.latencyJitter = try duration("--latency-jitter", latencyJitter)
        let maxHang = try duration("--max-hang", self.maxHang)
        guard maxHang > .zero else { throw Invalid(description: "--max-hang must be positive") }
        guard (0...65535).contains(port) else { throw Invalid(description: "--port must be within 0...65535, got \(port)") }
        guard chats >= 0, participantsPerChat >= 0 else {
            throw Invalid(description: "--chats and --participants-per-chat must not be negative")
        }
        guard maxBatch >= 1 else { throw Invalid(description: "--max-batch must be at least 1") }
        guard (0...86_400).contains(retryAfter) else { throw Invalid(description: "--retry-after must be within 0...86400") }
        guard let kind = StubFaults.MalformedKind(rawValue: malformedKind) else {
            throw Invalid(description: "--malformed-kind must be one of not_json, wrong_types, truncated, mixed")
        }
        guard let level = Logger.Level(rawValue: logLevel) else { throw Invalid(description: "--log-level: unknown level \(logLevel)") }
        faults.errorRate = errorRate
        faults.rate429 = rate429
        faults.retryAfterSeconds = retryAfter
        faults.malformedRate = malformedRate
        faults.malformedKind = kind
        faults.partialRate = partialRate
        faults.hang = hang
        faults.seed = seed
        let settings = StubUpstream.Settings(
            chats: chats, participantsPerChat: participantsPerChat, token: token, maxBatch: maxBatch,
            faults: faults, maxHang: maxHang)
        return (settings, level)
    }
}
