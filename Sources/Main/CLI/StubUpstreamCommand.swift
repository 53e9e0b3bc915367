import ArgumentParser
import ChatService
import StubUpstream

/// `chat-service stub-upstream`: a stand-in for the upstream participants API with synthetic
/// data and injectable faults, for demos, tests and benchmarks. Faults can also be changed at
/// run time: `PUT /admin/faults`.
struct StubUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stub-upstream",
        abstract: "Serve a stub of the upstream participants API (synthetic data, fault injection).",
        discussion: """
            Chats are chat-1 ... chat-N. Admin routes: GET /admin/stats, GET /admin/stats/chats/{chat_id}, \
            GET|PUT|DELETE /admin/faults, POST /admin/chats/{chat_id}/bump, POST /admin/reset. See docs/UPSTREAM.md.
            """)

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one; the log says which).")
    var port = 8090

    @Option(help: "Number of chats (chat-1 ... chat-N).")
    var chats = 1000

    @Option(help: "Participants in every chat.")
    var participantsPerChat = 20

    @Option(help: "Bearer token the API routes require (none by default).")
    var token: String?

    @Option(help: "Added delay per request, e.g. 50ms.")
    var latency = "0ms"

    @Option(help: "Random spread of the delay, plus or minus, e.g. 10ms.")
    var latencyJitter = "0ms"

    @Option(help: "Fraction of requests answered 503 (0...1).")
    var errorRate = 0.0

    @Option(name: .customLong("rate-429"), help: "Fraction of requests answered 429 with Retry-After (0...1).")
    var rate429 = 0.0

    @Option(help: "Retry-After seconds sent with 429 answers.")
    var retryAfter = 1

    @Option(help: "Fraction of 200 answers with a malformed body (0...1).")
    var malformedRate = 0.0

    @Option(help: "Malformed body kind: not_json, wrong_types, truncated or mixed.")
    var malformedKind = "mixed"

    @Option(help: "Fraction of batch answers that leave some requested ids out (0...1).")
    var partialRate = 0.0

    @Flag(help: "Never answer API requests until the fault is cleared (DELETE /admin/faults).")
    var hang = false

    @Option(help: "Longest a hanging request waits, e.g. 1h.")
    var maxHang = "1h"

    @Option(help: "Seed of the fault generator; same seed and requests, same faults.")
    var seed: UInt64 = 1

    @Option(help: "Most chat ids accepted in one batch request.")
    var maxBatch = 1000

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    var options: StubUpstreamOptions {
        var options = StubUpstreamOptions()
        options.host = host
        options.port = port
        options.chats = chats
        options.participantsPerChat = participantsPerChat
        options.token = token
        options.latency = latency
        options.latencyJitter = latencyJitter
        options.errorRate = errorRate
        options.rate429 = rate429
        options.retryAfter = retryAfter
        options.malformedRate = malformedRate
        options.malformedKind = malformedKind
        options.partialRate = partialRate
        options.hang = hang
        options.maxHang = maxHang
        options.seed = seed
        options.maxBatch = maxBatch
        options.logLevel = logLevel
        return options
    }

    func validate() throws {
        do {
            _ = try options.resolved()
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        try await StubUpstreamRunner.run(options: options)
    }
}
