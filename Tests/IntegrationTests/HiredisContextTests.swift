import Logging
import TestSupport
import Testing

@testable import ChatRuntime

/// The memory-safety rules of ``HiredisContext``: the wrapper stays alive while hiredis may call
/// it, is released once the context is gone, and is never freed under its own callback.
@Suite("HiredisContext", .timeLimit(.minutes(1)))
struct HiredisContextTests {
    @Test func freeingInsideAReplyCallbackIsDeferredAndReleasesTheWrapper() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                let probe = ContextProbe(loop: loop)
                try await probe.connect(port: server.port, freeOnFirstReply: true)
                // Three replies that hiredis most likely processes in one read: the second and
                // third run their callbacks after the first asked for the free.
                #expect(await probe.send([.ping, .ping, .ping]))
                #expect(await eventually { await probe.isReleased })
                #expect(await probe.events == ["connected", "reply +PONG"])
                #expect(await eventually { await clientCount(server) == 1 })
            }
        }
    }

    @Test func freeingOutsideCallbacksDeliversNoMoreEvents() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                let probe = ContextProbe(loop: loop)
                try await probe.connect(port: server.port, freeOnFirstReply: false)
                #expect(await probe.send([RedisCommand("BLPOP", ["never", "0"]), .ping]))
                await probe.freeNow()
                #expect(await eventually { await probe.isReleased })
                #expect(await !probe.events.contains { $0.hasPrefix("reply") || $0.hasPrefix("lost") })
                #expect(await eventually { await clientCount(server) == 1 })
            }
        }
    }

    @Test func connectFailureReleasesTheWrapper() async throws {
        try await withLoop { loop in
            let probe = ContextProbe(loop: loop)
            // Queued with the connect, so a NULL-reply callback follows the failed connect one.
            let queued = try await probe.connect(
                port: freeLoopbackPort(), freeOnFirstReply: false, sending: [.ping, .ping])
            #expect(queued)
            #expect(await eventually { await probe.isReleased })
            let events = await probe.events
            #expect(events.count == 1)
            #expect(events.first?.hasPrefix("lost connectFailed") == true)
        }
    }

    @Test func disconnectWithPendingCommandsIsOneLostEventAndReleasesTheWrapper() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                let probe = ContextProbe(loop: loop)
                try await probe.connect(port: server.port, freeOnFirstReply: false)
                #expect(await probe.send([.ping, RedisCommand("BLPOP", ["never", "0"]), .ping, .ping]))
                #expect(await eventually { await probe.events.count == 2 })
                await server.kill()
                #expect(await eventually { await probe.isReleased })
                let events = await probe.events
                #expect(events.count == 3)
                #expect(events.prefix(2) == ["connected", "reply +PONG"])
                #expect(events.last?.hasPrefix("lost disconnected") == true)
            }
        }
    }
}

/// Drives a ``HiredisContext`` on the loop and records its events.
private actor ContextProbe {
    nonisolated let unownedExecutor: UnownedSerialExecutor
    private let loop: EventLoop
    private var context: HiredisContext?
    private weak var weakContext: HiredisContext?
    private var freeOnFirstReply = false
    private(set) var events: [String] = []

    init(loop: EventLoop) {
        self.loop = loop
        unownedExecutor = loop.asUnownedSerialExecutor()
    }

    /// Connects and queues `commands` in the same step; returns whether hiredis took them all.
    @discardableResult
    func connect(port: Int, freeOnFirstReply: Bool, sending commands: [RedisCommand] = []) throws(RedisError) -> Bool {
        self.freeOnFirstReply = freeOnFirstReply
        let context = try HiredisContext.connect(host: "127.0.0.1", port: port, loop: loop) { [weak self] event in
            self?.assumeIsolated { $0.record(event) }
        }
        self.context = context
        weakContext = context
        return send(commands)
    }

    func send(_ commands: [RedisCommand]) -> Bool {
        guard let context else { return false }
        return commands.allSatisfy { context.send($0) }
    }

    func freeNow() {
        context?.free()
        context = nil
    }

    /// Whether the wrapper is gone: our reference dropped and hiredis' retain balanced.
    var isReleased: Bool { context == nil && weakContext == nil }

    private func record(_ event: HiredisContext.Event) {
        switch event {
        case .connected:
            events.append("connected")
        case .reply(let value):
            events.append("reply \(value)")
            if freeOnFirstReply {
                // Inside hiredis' reply callback.
                context?.free()
                context = nil
            }
        case .lost(let loss):
            events.append("lost \(loss)")
            context = nil
        }
    }
}

/// How many clients the server has, counting the redis-cli that asks.
func clientCount(_ server: RedisServer) async -> Int {
    guard let list = try? await server.cli("CLIENT", "LIST") else { return -1 }
    return list.split(separator: "\n").count
}
