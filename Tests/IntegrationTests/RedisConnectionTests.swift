import Foundation
import Logging
import ChatRuntime
import TestSupport
import Testing

@Suite("RedisConnection", .timeLimit(.minutes(1)))
struct RedisConnectionTests {
    let logger = Logger(label: "test.redis-connection", factory: { _ in SwiftLogNoOpLogHandler() })

    // MARK: Commands

    @Test func setAndGetRoundTripBinaryBytes() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                let connection = try await RedisConnection.connect(to: server.endpoint(), on: loop, logger: logger)
                let value: [UInt8] = [0, 13, 10, 0, 255, 36, 42, 13, 10] + (0...255).map { UInt8($0) }
                #expect(try await connection.send(.set("binary", value: value)) == .simpleString("OK"))
                #expect(try await connection.send(.get("binary")) == .bulkString(value))
                #expect(try await server.cli("STRLEN", "binary") == "\(value.count)")

                let binaryKey: [UInt8] = [0, 13, 10, 0]
                #expect(try await connection.send(RedisCommand("SET", arguments: [binaryKey, []])) == .simpleString("OK"))
                #expect(try await connection.send(RedisCommand("GET", arguments: [binaryKey])) == .bulkString([]))
                #expect(try await connection.send(.get("missing")) == .null)
                await connection.close()
            }
        }
    }

    @Test func tenThousandCommandsInFlightGetTheirOwnRepliesInOrder() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                let connection = try await RedisConnection.connect(to: server.endpoint(), on: loop, logger: logger)
                let count = 10_000

                let increments = try await connection.pipeline(Array(repeating: .incr("counter"), count: count))
                #expect(increments == (1...count).map { .integer(Int64($0)) })

                // Separate tasks on the loop: each enqueues and suspends, so thousands are in
                // flight at once; a reply routed to the wrong waiter shows as a mismatch.
                let mismatches = await withTaskGroup(of: Int.self) { group in
                    for index in 0..<count {
                        group.addTask(executorPreference: loop) {
                            let reply = await connection.result(of: RedisCommand("ECHO", ["value-\(index)"]))
                            return (try? reply.get().string) == "value-\(index)" ? 0 : 1
                        }
                    }
                    return await group.reduce(0, +)
                }
                #expect(mismatches == 0)
                #expect(await connection.pendingCount == 0)
                await connection.close()
            }
        }
    }

    @Test func errorRepliesThrowFromSendAndStayInPlaceInPipelines() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                let connection = try await RedisConnection.connect(to: server.endpoint(), on: loop, logger: logger)
                _ = try await connection.send(.set("text", value: Array("abc".utf8)))
                let error = await #expect(throws: RedisError.self) { try await connection.send(.incr("text")) }
                #expect(error?.code == .server)
                #expect(error?.message.hasPrefix("ERR") == true)

                let replies = try await connection.pipeline([.incr("text"), .get("text"), .ping])
                #expect(replies.count == 3)
                #expect(replies.first?.errorMessage?.hasPrefix("ERR") == true)
                #expect(Array(replies.dropFirst()) == [.bulkString(Array("abc".utf8)), .simpleString("PONG")])
                #expect(try await connection.pipeline([]) == [])

                let subscribe = await #expect(throws: RedisError.self) { try await connection.send(RedisCommand("SUBSCRIBE", ["channel"])) }
                #expect(subscribe?.code == .protocolError)
                // A server error is not a connection failure.
                #expect(await connection.isConnected)
                await connection.close()
            }
        }
    }

    // MARK: Failures

    @Test func frozenServerFailsCommandsWithCommandTimeout() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                // The long connect timeout must not delay the short command timeout (the
                // handshake's deadline is the connect timeout).
                let options = RedisConnectionOptions(connectTimeout: .seconds(120), commandTimeout: .milliseconds(300))
                let connection = try await RedisConnection.connect(to: server.endpoint(), on: loop, options: options, logger: logger)
                server.freeze()
                defer { server.thaw() }

                // Bounded far above the 300 ms timeout, far below the connect timeout.
                let codes = try #require(await firstResult(within: .seconds(30)) {
                    await withTaskGroup(of: RedisError.Code?.self) { group in
                        for index in 0..<5 {
                            group.addTask { await connection.result(of: .get("key-\(index)")).failureCode }
                        }
                        return await group.reduce(into: [RedisError.Code?]()) { $0.append($1) }
                    }
                })
                #expect(codes == Array(repeating: .commandTimeout, count: 5))
                let reason = await connection.waitUntilClosed()
                #expect(reason.code == .commandTimeout)
                #expect(reason.message.contains("no reply"))
                #expect(await !connection.isConnected)
                #expect(await connection.result(of: .ping).failureCode == .commandTimeout)

                server.thaw()
                let fresh = try await RedisConnection.connect(to: server.endpoint(), on: loop, logger: logger)
                #expect(try await fresh.send(.ping) == .simpleString("PONG"))
                await fresh.close()
            }
        }
    }

    @Test func killedServerFailsPendingCommandsWithDisconnected() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                let options = RedisConnectionOptions(commandTimeout: .seconds(30))
                let connection = try await RedisConnection.connect(to: server.endpoint(), on: loop, options: options, logger: logger)
                // BLPOP blocks this client in Redis, so the commands behind it stay pending too.
                let pending = try await startBlockedCommands(on: connection)

                await server.kill()
                for task in pending {
                    #expect(await task.value.failureCode == .disconnected)
                }
                let reason = await connection.waitUntilClosed()
                #expect(reason.code == .disconnected)
                #expect(!reason.message.isEmpty)
                #expect(await connection.pendingCount == 0)

                try await server.restart()
                let again = try await RedisConnection.connect(to: server.endpoint(), on: loop, logger: logger)
                #expect(try await again.send(.ping) == .simpleString("PONG"))
                await again.close()
            }
        }
    }

    @Test func killedServerClosesAnIdleConnection() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                let connection = try await RedisConnection.connect(to: server.endpoint(), on: loop, logger: logger)
                await server.kill()
                #expect(await connection.waitUntilClosed().code == .disconnected)
                #expect(await connection.result(of: .ping).failureCode == .disconnected)
            }
        }
    }

    @Test func closeFailsPendingCommandsWithClosed() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                let options = RedisConnectionOptions(commandTimeout: .seconds(30))
                let connection = try await RedisConnection.connect(to: server.endpoint(), on: loop, options: options, logger: logger)
                let pending = try await startBlockedCommands(on: connection)

                await connection.close()
                for task in pending {
                    #expect(await task.value.failureCode == .closed)
                }
                #expect(await connection.waitUntilClosed().code == .closed)
                await connection.close()
                #expect(await connection.result(of: .ping).failureCode == .closed)
                #expect(await !connection.isConnected)
                // The server is unharmed.
                #expect(try await server.cli("PING") == "PONG")
            }
        }
    }

    @Test func aConnectionDroppedWithoutCloseFreesItsContext() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                var connection: RedisConnection? = try await RedisConnection.connect(to: server.endpoint(), on: loop, logger: logger)
                #expect(try await connection?.send(.ping) == .simpleString("PONG"))
                #expect(await clientCount(server) == 2)
                connection = nil
                #expect(await eventually { await clientCount(server) == 1 })
            }
        }
    }

    @Test func connectOnAStoppedLoopFailsInsteadOfHanging() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                loop.stop()
                let error = await #expect(throws: RedisError.self) {
                    try await RedisConnection.connect(to: server.endpoint(), on: loop, logger: logger)
                }
                #expect(error?.code == .connectFailed)
            }
        }
    }

    @Test func connectToAClosedPortFailsWithConnectFailed() async throws {
        try await withLoop { loop in
            let endpoint = RedisEndpoint(host: "127.0.0.1", port: freeLoopbackPort())
            let error = await #expect(throws: RedisError.self) {
                try await RedisConnection.connect(to: endpoint, on: loop, logger: logger)
            }
            #expect(error?.code == .connectFailed)
        }
    }

    @Test(arguments: ["redis://127.0.0.1:PORT/0", "redis://:secret@127.0.0.1:PORT/2"])
    func connectToAServerThatNeverAnswersFailsWithConnectTimeout(_ template: String) async throws {
        let listener = SilentListener()
        try await withLoop { loop in
            let endpoint = try RedisEndpoint(url: template.replacingOccurrences(of: "PORT", with: "\(listener.port)"))
            let options = RedisConnectionOptions(connectTimeout: .milliseconds(300))
            let error = await #expect(throws: RedisError.self) {
                try await RedisConnection.connect(to: endpoint, on: loop, options: options, logger: logger)
            }
            #expect(error?.code == .connectTimeout)
        }
    }

    // MARK: Handshake

    @Test func passwordAuthentication() async throws {
        let password = "p@ss:w/rd \"quoted\" é"
        try await withRedisServer(password: password) { server in
            try await withLoop { loop in
                let endpoint = try RedisEndpoint(url: server.url)
                #expect(endpoint.password == password)
                let connection = try await RedisConnection.connect(to: endpoint, on: loop, logger: logger)
                #expect(try await connection.send(.ping) == .simpleString("PONG"))
                await connection.close()

                var wrongPassword = endpoint
                wrongPassword.password = "not-it"
                #expect(await connectFailure(wrongPassword, on: loop) == .authFailed)

                var noPassword = endpoint
                noPassword.password = nil
                #expect(await connectFailure(noPassword, on: loop) == .authFailed)
            }
        }
    }

    @Test func aclUserAuthentication() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                #expect(try await server.cli("ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "&*", "+@all") == "OK")
                let endpoint = try RedisEndpoint(url: "redis://alice:alice-pw@127.0.0.1:\(server.port)/0")
                let connection = try await RedisConnection.connect(to: endpoint, on: loop, logger: logger)
                #expect(try await connection.send(RedisCommand("ACL", ["WHOAMI"])).string == "alice")
                await connection.close()

                var wrongPassword = endpoint
                wrongPassword.password = "nope"
                #expect(await connectFailure(wrongPassword, on: loop) == .authFailed)
                var unknownUser = endpoint
                unknownUser.username = "mallory"
                #expect(await connectFailure(unknownUser, on: loop) == .authFailed)
            }
        }
    }

    @Test func selectsTheDatabase() async throws {
        try await withRedisServer { server in
            try await withLoop { loop in
                let connection = try await RedisConnection.connect(to: server.endpoint(database: 3), on: loop, logger: logger)
                #expect(try await connection.send(.set("db-key", value: Array("in three".utf8))) == .simpleString("OK"))
                await connection.close()
                #expect(try await server.cli("-n", "3", "GET", "db-key") == "in three")
                #expect(try await server.cli("GET", "db-key") == "")

                // redis-server has 16 databases by default.
                #expect(await connectFailure(server.endpoint(database: 99), on: loop) == .selectFailed)
            }
        }
    }

    // MARK: Helpers

    /// Sends a BLPOP that blocks this client in Redis, then two more commands queued behind it;
    /// returns once all three are pending.
    private func startBlockedCommands(on connection: RedisConnection) async throws -> [Task<Result<RESPValue, RedisError>, Never>] {
        let blocked = Task { await connection.result(of: RedisCommand("BLPOP", ["never-filled", "0"])) }
        try #require(await eventually { await connection.pendingCount == 1 })
        let queued = (0..<2).map { index in
            Task { await connection.result(of: .get("queued-\(index)")) }
        }
        try #require(await eventually { await connection.pendingCount == 3 })
        return [blocked] + queued
    }

    private func connectFailure(_ endpoint: RedisEndpoint, on loop: EventLoop) async -> RedisError.Code? {
        do {
            let connection = try await RedisConnection.connect(to: endpoint, on: loop, logger: logger)
            await connection.close()
            return nil
        } catch {
            return error.code
        }
    }
}

/// Runs `body` with a fresh event loop, stopped afterwards on every path.
func withLoop<Result>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (EventLoop) async throws -> Result
) async throws -> Result {
    let loop = EventLoop(name: "test-redis-loop")
    defer { loop.stop() }
    return try await body(loop)
}

/// The value of `operation`, or nil when it takes longer than `timeout` (it is then left
/// running, unstructured, so a hang cannot hold the test).
func firstResult<Value: Sendable>(within timeout: Duration, _ operation: @escaping @Sendable () async -> Value) async -> Value? {
    let (results, continuation) = AsyncStream.makeStream(of: Value?.self)
    let work = Task {
        continuation.yield(await operation())
        continuation.finish()
    }
    let timer = Task {
        // The bound itself, not a wait for something to happen.
        try? await Task.sleep(for: timeout)
        continuation.yield(nil)
        continuation.finish()
    }
    defer {
        timer.cancel()
        _ = work
    }
    for await result in results {
        return result
    }
    return nil
}

extension RedisConnection {
    /// `send` as a value, for tasks that collect outcomes.
    func result(of command: RedisCommand) async -> Result<RESPValue, RedisError> {
        do {
            return .success(try await send(command))
        } catch {
            return .failure(error)
        }
    }
}

extension Result where Failure == RedisError {
    var failureCode: RedisError.Code? {
        if case .failure(let error) = self { return error.code }
        return nil
    }
}
