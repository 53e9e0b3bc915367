public import Logging

/// One connection to Redis: a hiredis async context on an ``EventLoop``.
///
/// The actor runs on the loop's executor, so its methods, hiredis' callbacks and the C context
/// all live on the loop thread. Many commands may be in flight at once (from many tasks, or
/// through ``pipeline(_:)``); replies come back in order.
///
/// ## Failure
/// A connection is used until it fails, then thrown away; it never reconnects. It fails when
/// - the server goes away: every pending command fails with `.disconnected`;
/// - a command gets no reply within `commandTimeout` (hiredis 0.14 has no timeout of its own):
///   the server is presumed dead, the context is freed and every pending command fails with
///   `.commandTimeout` (the oldest says it timed out, the others that an earlier one did);
/// - ``close()`` is called: pending commands fail with `.closed`.
/// ``waitUntilClosed()`` reports why. Commands cannot be cancelled once sent: they end with a
/// reply or with the connection.
///
/// The loop must keep running while the connection is open: close connections before
/// stopping their loop.
///
/// One timer serves all the deadlines: it is armed for the oldest pending command and, when it
/// fires early because that command got its reply, re-armed for the new oldest.
public actor RedisConnection {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    public nonisolated let endpoint: RedisEndpoint
    private let loop: EventLoop
    private let options: RedisConnectionOptions
    private let logger: Logger

    private enum State {
        case idle
        case connecting
        case connected
        case closed(RedisError)
    }

    private var state = State.idle
    private var context: HiredisContext?
    private var pending = FIFOQueue<PendingCommand>()
    private var deadlineTimer: LoopTimer?
    /// The deadline `deadlineTimer` was last armed for. Deadlines grow with the queue, except
    /// across the handshake (connect timeout) and the first commands (command timeout).
    private var deadlineTimerArmedFor: ContinuousClock.Instant?
    private var closeWaiters: [CheckedContinuation<RedisError, Never>] = []

    private init(endpoint: RedisEndpoint, loop: EventLoop, options: RedisConnectionOptions, logger: Logger) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.endpoint = endpoint
        self.loop = loop
        self.options = options
        var logger = logger
        logger[metadataKey: "redis.endpoint"] = "\(endpoint.redactedDescription)"
        self.logger = logger
    }

    isolated deinit {
        // Dropped without close(): nothing can be waiting (a waiter keeps the actor alive).
        deadlineTimer?.cancel()
        context?.free()
    }

    /// Connects (TCP + AUTH + SELECT), all bounded by `connectTimeout`. Throws RedisError.
    ///
    /// AUTH is sent when the endpoint has a password (with the user name for an ACL user),
    /// SELECT when the database is not 0, and PING when neither is, so that a server that
    /// accepts TCP but never answers is detected here.
    public static func connect(
        to endpoint: RedisEndpoint,
        on loop: EventLoop,
        options: RedisConnectionOptions = RedisConnectionOptions(),
        logger: Logger
    ) async throws(RedisError) -> RedisConnection {
        let connection = RedisConnection(endpoint: endpoint, loop: loop, options: options, logger: logger)
        try await connection.open()
        return connection
    }

    /// Whether the connection is up: connected and not yet closed.
    public var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    /// Sends one command and returns its reply. An error reply (`-ERR ...`) throws
    /// `RedisError(code: .server)` with Redis' message.
    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        try checkCanSend([command])
        let deadline = ContinuousClock.now + options.commandTimeout
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<RESPValue, RedisError>, Never>) in
            let waiter = ReplyWaiter.single(continuation)
            if let error = enqueue(command, deadline: deadline, waiter: waiter) {
                waiter.fail(error)
            }
        }
        let value = try result.get()
        if case .error(let message) = value {
            throw RedisError(code: .server, message: message)
        }
        return value
    }

    /// Sends all `commands` at once and returns their replies in order. Error replies come
    /// back as `.error` values; only connection-level failures throw.
    public func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [RESPValue] {
        try checkCanSend(commands)
        if commands.isEmpty { return [] }
        let deadline = ContinuousClock.now + options.commandTimeout
        return try await enqueuePipeline(commands, deadline: deadline)
    }

    /// Closes the connection; idempotent. Pending commands fail with `.closed`.
    public func close() {
        switch state {
        case .closed:
            return
        case .idle, .connecting, .connected:
            teardown(RedisError(code: .closed, message: "connection to \(endpoint.redactedDescription) was closed"))
        }
    }

    /// Suspends until the connection is gone and returns why (returns at once if already gone).
    /// Not cancellable: ``close()`` ends the wait.
    public func waitUntilClosed() async -> RedisError {
        // The state is checked inside the body: the call itself may let loop callbacks (the
        // disconnect) run first, so a check before it could miss the close.
        return await withCheckedContinuation { continuation in
            if case .closed(let reason) = state {
                continuation.resume(returning: reason)
            } else {
                closeWaiters.append(continuation)
            }
        }
    }

    /// How many commands await their reply.
    public var pendingCount: Int { pending.count }

    // MARK: Connecting

    private func open() async throws(RedisError) {
        loop.preconditionInLoop()
        guard case .idle = state else { preconditionFailure("open() runs once") }
        state = .connecting
        guard !loop.isStopped else {
            // No I/O or timer would ever fire: fail instead of hanging.
            let error = RedisError(code: .connectFailed, message: "event loop \(loop.name) is stopped")
            finish(error)
            throw error
        }
        let deadline = ContinuousClock.now + options.connectTimeout
        // The name is looked up here, on every connect, through the loop's resolver: hiredis
        // would resolve it with a blocking getaddrinfo on the loop thread. The lookup counts
        // against the connect timeout, and its failure is a connect failure.
        let address: String
        do {
            address =
                try await loop.resolver.resolve(endpoint.host, timeout: deadline - ContinuousClock.now).first
                ?? endpoint.host
        } catch {
            let failure = RedisError(
                code: error.code == .timeout ? .connectTimeout : .connectFailed,
                message: "cannot connect to \(endpoint.redactedDescription): \(error)")
            finish(failure)
            throw failure
        }
        if case .closed(let reason) = state {
            // close() ran while the name was looked up.
            throw reason
        }
        do {
            context = try HiredisContext.connect(host: address, port: endpoint.port, loop: loop) { [weak self] event in
                self?.assumeIsolated { $0.handle(event) }
            }
        } catch {
            finish(error)
            throw error
        }

        let handshake = handshakeSteps()
        let replies: [RESPValue]
        do {
            replies = try await enqueuePipeline(handshake.map(\.command), deadline: deadline)
        } catch {
            // The connection may have failed before the handshake was queued; report why.
            if case .closed(let reason) = state { throw reason }
            teardown(error)
            throw error
        }
        // Nothing else holds this connection yet, so only a failure could have changed the
        // state, and a failure throws above.
        for (step, reply) in zip(handshake, replies) {
            guard case .error(let message) = reply else { continue }
            let code: RedisError.Code =
                message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") ? .authFailed : step.failureCode
            let error = RedisError(
                code: code, message: "\(step.command.name) on \(endpoint.redactedDescription) failed: \(message)")
            logger.warning("Redis handshake refused", metadata: ["redis.error": "\(error.message)"])
            teardown(error)
            throw error
        }
        state = .connected
        logger.debug("Redis connected")
    }

    private struct HandshakeStep {
        let command: RedisCommand
        let failureCode: RedisError.Code
    }

    private func handshakeSteps() -> [HandshakeStep] {
        var steps: [HandshakeStep] = []
        if let password = endpoint.password {
            steps.append(
                HandshakeStep(command: .auth(username: endpoint.username, password: password), failureCode: .authFailed)
            )
        }
        if endpoint.database != 0 {
            steps.append(HandshakeStep(command: .select(endpoint.database), failureCode: .selectFailed))
        }
        if steps.isEmpty {
            steps.append(HandshakeStep(command: .ping, failureCode: .connectFailed))
        }
        return steps
    }

    // MARK: Sending

    private func checkCanSend(_ commands: [RedisCommand]) throws(RedisError) {
        switch state {
        case .connected:
            break
        case .closed(let reason):
            throw RedisError(code: reason.code, message: "connection is closed: \(reason.message)")
        case .idle, .connecting:
            throw RedisError(code: .protocolError, message: "connection is not connected yet")
        }
        for command in commands {
            if command.arguments.isEmpty {
                throw RedisError(code: .protocolError, message: "a command needs at least a name")
            }
            if command.breaksReplyOrder {
                throw RedisError(
                    code: .protocolError,
                    message:
                        "\(command.name.uppercased()) is not supported on a RedisConnection: it breaks the one-reply-per-command order"
                )
            }
        }
    }

    private func enqueuePipeline(_ commands: [RedisCommand], deadline: ContinuousClock.Instant) async throws(RedisError)
        -> [RESPValue]
    {
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<[RESPValue], RedisError>, Never>) in
            let replies = PipelineReplies(expected: commands.count, continuation: continuation)
            for command in commands {
                // Commands already queued still get their replies; the failed pipeline ignores them.
                if let error = enqueue(command, deadline: deadline, waiter: .pipeline(replies)) {
                    replies.fail(error)
                    return
                }
            }
        }
        return try result.get()
    }

    /// Hands `command` to hiredis and records who waits for its reply; returns the error
    /// instead when the command cannot be sent.
    private func enqueue(_ command: RedisCommand, deadline: ContinuousClock.Instant, waiter: ReplyWaiter) -> RedisError?
    {
        guard let context else {
            if case .closed(let reason) = state {
                return RedisError(code: reason.code, message: "connection is closed: \(reason.message)")
            }
            return RedisError(code: .protocolError, message: "connection has no hiredis context")
        }
        guard context.send(command) else {
            return RedisError(code: .protocolError, message: "hiredis refused \(command.name.uppercased())")
        }
        pending.append(PendingCommand(deadline: deadline, waiter: waiter))
        armDeadlineTimer(for: deadline)
        return nil
    }

    // MARK: Deadlines

    private func armDeadlineTimer(for deadline: ContinuousClock.Instant) {
        if let armedDeadline = deadlineTimerArmedFor, armedDeadline <= deadline, deadlineTimer?.isArmed == true {
            // Already armed for an earlier deadline, which fires first and re-arms.
            return
        }
        let timer: LoopTimer
        if let deadlineTimer {
            timer = deadlineTimer
        } else {
            timer = LoopTimer(loop: loop) { [weak self] in
                self?.assumeIsolated { $0.deadlineTimerFired() }
            }
            deadlineTimer = timer
        }
        deadlineTimerArmedFor = deadline
        timer.schedule(after: deadline - ContinuousClock.now)
    }

    private func deadlineTimerFired() {
        guard let oldest = pending.first else { return }
        let now = ContinuousClock.now
        if oldest.deadline > now {
            armDeadlineTimer(for: oldest.deadline)
            return
        }
        let name = endpoint.redactedDescription
        let reason: RedisError
        let others: RedisError
        if case .connecting = state {
            reason = RedisError(
                code: .connectTimeout,
                message: "connecting to \(name) (TCP, AUTH, SELECT) took longer than \(options.connectTimeout)")
            others = reason
        } else {
            reason = RedisError(
                code: .commandTimeout,
                message:
                    "no reply from \(name) within \(options.commandTimeout); the server is presumed unresponsive and the connection was dropped"
            )
            others = RedisError(
                code: .commandTimeout,
                message:
                    "the connection to \(name) was dropped because an earlier command got no reply within \(options.commandTimeout)"
            )
        }
        teardown(reason, othersPending: others)
    }

    // MARK: hiredis events

    private func handle(_ event: HiredisContext.Event) {
        switch event {
        case .connected:
            logger.trace("Redis TCP connected")
        case .reply(let value):
            guard let entry = pending.popFirst() else {
                logger.error("Redis reply without a pending command; dropping the connection")
                teardown(RedisError(code: .protocolError, message: "reply without a pending command"))
                return
            }
            entry.waiter.deliver(value)
        case .lost(let loss):
            // hiredis frees the context itself.
            context = nil
            let name = endpoint.redactedDescription
            switch (loss, state) {
            case (.connectFailed(let message), _):
                finish(RedisError(code: .connectFailed, message: "cannot connect to \(name): \(message)"))
            case (.disconnected(let message), .connecting):
                finish(
                    RedisError(
                        code: .connectFailed, message: "connection to \(name) closed while connecting: \(message)"))
            case (.disconnected(let message), _):
                finish(RedisError(code: .disconnected, message: "connection to \(name) lost: \(message)"))
            }
        }
    }

    // MARK: Closing

    /// Frees the context (if any) and finishes with `reason`.
    private func teardown(_ reason: RedisError, othersPending: RedisError? = nil) {
        if let context {
            self.context = nil
            // Not inside a hiredis callback here: teardown runs from actor jobs and timers.
            context.free()
        }
        finish(reason, othersPending: othersPending)
    }

    /// Marks the connection closed, fails every pending command (the oldest with `reason`, the
    /// others with `othersPending` if given) and wakes the waiters. Idempotent.
    private func finish(_ reason: RedisError, othersPending: RedisError? = nil) {
        if case .closed = state { return }
        let wasConnected: Bool
        if case .connected = state { wasConnected = true } else { wasConnected = false }
        state = .closed(reason)
        context = nil
        deadlineTimer?.cancel()
        deadlineTimer = nil
        let failedCount = pending.count
        var error = reason
        while let entry = pending.popFirst() {
            entry.waiter.fail(error)
            error = othersPending ?? reason
        }
        let waiters = closeWaiters
        closeWaiters = []
        for waiter in waiters {
            waiter.resume(returning: reason)
        }
        if wasConnected {
            let level: Logger.Level = reason.code == .closed ? .debug : .warning
            logger.log(
                level: level, "Redis connection closed",
                metadata: [
                    "redis.reason": "\(reason.code)",
                    "redis.error": "\(reason.message)",
                    "redis.failed_commands": "\(failedCount)",
                ])
        } else {
            logger.debug(
                "Redis connect failed",
                metadata: ["redis.reason": "\(reason.code)", "redis.error": "\(reason.message)"])
        }
    }
}
