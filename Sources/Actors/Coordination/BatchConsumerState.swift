/// What one instance's reader of the shared batch stream holds, and what it does next: the pure
/// part of ``BatchStreamConsumer``. ``handle(_:)`` is its one transition function; the actor
/// carries the returned actions out and reports their results back as events.
///
/// The rules it keeps:
/// - **Holdings are bounded.** `held` counts batches read (or claimed) and not yet settled: with
///   the batcher, or processed with their outcome waiting to be booked. A read asks for at most
///   `holdLimit - held - blockingCount`, so the instance never holds more than `holdLimit`, and a
///   dead instance leaves at most that many batches for the others to claim.
/// - **No batch waits on a timer while there is work and room.** After a read that filled its
///   count, the next read follows at once; when a read came back short (the stream is drained), a
///   blocking read on a connection of its own waits for the next append of any instance. Only
///   without that connection does an idle reader poll (`pollLater`).
/// - **One read at a time on the shared connection, one booking at a time**: the outcomes kept
///   meanwhile are booked together, oldest first, in one pipeline, so a run's books follow the
///   order batches finished.
/// - **An outcome that cannot be booked is kept** (Redis away) and booked when Redis is back, or
///   at the next claim tick. A skipped batch (shutdown) is not booked: it stays pending for
///   another instance to claim.
/// - **Shutdown** stops reading at once; the reader finishes when everything it holds is settled,
///   or when the grace period ends (what is left stays pending in the stream).
struct BatchConsumerState: Sendable, Hashable {
    enum Phase: Sendable, Hashable {
        /// Redis is not ready: nothing is read, outcomes are kept.
        case waitingForRedis
        /// Reading while there is room.
        case reading
        /// Shutdown began: no more reads; outcomes still booked.
        case stopping
        /// Done: the actor's loop ends.
        case finished
    }

    enum Event: Sendable, Hashable {
        case redisReady
        case redisLost
        /// The consumer group exists (created, or it was there).
        case groupEnsured
        case groupFailed
        /// A non-blocking read returned `entries` stream entries (when asked for `asked`), of
        /// which `held` were batches handed to the batcher.
        case readCompleted(entries: Int, held: Int, asked: Int)
        /// A read found the group missing (Redis lost it).
        case noGroup
        case readFailed
        /// The blocking read returned `entries` entries (0: its block time passed), `held` of
        /// them batches handed to the batcher.
        case blockingReadCompleted(entries: Int, held: Int)
        /// No connection of its own could be had: polling takes over until the next ready.
        case blockingReadUnavailable
        /// The idle poll's time came (only without a blocking read).
        case pollDue
        /// Time to look for batches dead instances left pending (and to retry kept bookings).
        case claimDue
        /// A claim returned; `held` batches handed to the batcher; `more` when its cursor has
        /// not wrapped (the pending list has more to scan).
        case claimCompleted(held: Int, more: Bool)
        case claimFailed
        /// The batcher finished a batch: `booked` false for a skipped one (not processed).
        case outcome(needsBooking: Bool)
        /// The `count` oldest kept outcomes were booked (or found booked already) / could not be.
        case booked(count: Int)
        case bookingFailed
        /// The batcher's concurrency limit changed: the hold limit follows it.
        case holdLimitChanged(Int)
        /// Graceful shutdown began.
        case shutdown
        /// The shutdown grace period ended.
        case graceExpired
    }

    enum Action: Sendable, Hashable {
        case ensureGroup
        /// `XREADGROUP ... COUNT n` on the shared connection, no `BLOCK`.
        case read(count: Int)
        /// `XREADGROUP ... BLOCK t COUNT n` on the reader's own connection.
        case blockingRead(count: Int)
        /// Abandon the blocking read (shutdown): close its connection.
        case cancelBlockingRead
        /// Arm the idle poll (no connection for a blocking read).
        case pollLater
        /// `XAUTOCLAIM ... COUNT n`.
        case claim(count: Int)
        /// Book the `count` oldest kept outcomes, in order, in one pipeline.
        case book(count: Int)
        /// The reader is done.
        case finish
    }

    private(set) var phase = Phase.waitingForRedis
    private(set) var held = 0
    private(set) var holdLimit: Int
    /// Outcomes processed and not yet booked, oldest first (the actor keeps the values).
    private(set) var unbooked = 0
    private(set) var groupReady = false
    private(set) var reading = false
    private(set) var booking = false
    /// How many outcomes the booking in progress books.
    private(set) var bookingCount = 0
    /// Entries the outstanding blocking read may deliver (0: none outstanding).
    private(set) var blockingCount = 0
    private(set) var blockingAvailable = true
    private(set) var pollArmed = false
    /// The last read filled its count: the stream likely has more.
    private(set) var streamMayHaveMore = true
    private(set) var claimDue = true
    /// A claim scan is under way (its cursor has not wrapped): continue it while there is room.
    private(set) var claimContinues = false
    /// A booking failed: wait for Redis to be ready again (or the next claim tick).
    private(set) var bookingBlocked = false
    /// A read, claim or group creation failed while Redis stayed ready: wait for the next tick
    /// (claim or poll) or for Redis to be ready again, rather than retry in a hot loop.
    private(set) var readBlocked = false

    /// Outcomes booked in one pipeline at most.
    static let maxBookingsPerPipeline = 64

    init(holdLimit: Int) {
        precondition(holdLimit >= 1, "a reader must be able to hold a batch")
        self.holdLimit = holdLimit
    }

    /// Batches that may still be read now.
    var room: Int { max(0, holdLimit - held - blockingCount) }

    mutating func handle(_ event: Event) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .redisReady:
            bookingBlocked = false
            readBlocked = false
            blockingAvailable = true
            if phase == .waitingForRedis { phase = .reading }
            streamMayHaveMore = true
        case .redisLost:
            groupReady = false
            if phase == .reading { phase = .waitingForRedis }
        case .groupEnsured:
            expect(reading, "group ensured without asking")
            reading = false
            groupReady = true
        case .groupFailed:
            expect(reading, "group failure without asking")
            reading = false
            readBlocked = true
        case .readCompleted(let entries, let heldNow, let asked):
            expect(reading, "read completed without a read")
            reading = false
            held += heldNow
            streamMayHaveMore = entries >= asked
        case .noGroup:
            expect(reading, "no group without a read")
            reading = false
            groupReady = false
        case .readFailed:
            expect(reading, "read failed without a read")
            reading = false
            readBlocked = true
        case .blockingReadCompleted(let entries, let heldNow):
            expect(blockingCount > 0, "blocking read completed without one")
            blockingCount = 0
            held += heldNow
            streamMayHaveMore = entries > 0
        case .blockingReadUnavailable:
            blockingCount = 0
            blockingAvailable = false
        case .pollDue:
            pollArmed = false
            streamMayHaveMore = true
            blockingAvailable = true
            readBlocked = false
        case .claimDue:
            claimDue = true
            bookingBlocked = false
            readBlocked = false
        case .claimCompleted(let heldNow, let more):
            expect(reading, "claim completed without a claim")
            reading = false
            held += heldNow
            claimContinues = more
        case .claimFailed:
            expect(reading, "claim failed without a claim")
            reading = false
            claimContinues = false
            readBlocked = true
        case .outcome(let needsBooking):
            if needsBooking {
                unbooked += 1
            } else {
                expect(held > 0, "an outcome for a batch not held")
                held = max(0, held - 1)
            }
        case .booked(let count):
            expect(booking && count == bookingCount && unbooked >= count && held >= count, "booked without a booking")
            booking = false
            bookingCount = 0
            unbooked = max(0, unbooked - count)
            held = max(0, held - count)
        case .bookingFailed:
            expect(booking, "booking failed without a booking")
            booking = false
            bookingCount = 0
            bookingBlocked = true
        case .holdLimitChanged(let limit):
            holdLimit = max(1, limit)
        case .shutdown:
            if phase != .finished { phase = .stopping }
            if blockingCount > 0 { actions.append(.cancelBlockingRead) }
        case .graceExpired:
            if phase == .stopping {
                phase = .finished
                return actions + [.finish]
            }
        }
        return actions + next()
    }

    /// What to start after any event.
    private mutating func next() -> [Action] {
        guard phase != .finished else { return [] }
        var actions: [Action] = []
        if !booking, !bookingBlocked, unbooked > 0, phase != .waitingForRedis {
            booking = true
            bookingCount = min(unbooked, Self.maxBookingsPerPipeline)
            actions.append(.book(count: bookingCount))
        }
        if phase == .stopping {
            if held == 0, !reading, !booking, blockingCount == 0 {
                phase = .finished
                actions.append(.finish)
            }
            return actions
        }
        guard phase == .reading, !reading, !readBlocked else { return actions }
        if !groupReady {
            reading = true
            return actions + [.ensureGroup]
        }
        let room = room
        guard room > 0 else { return actions }
        if claimDue || claimContinues {
            claimDue = false
            reading = true
            return actions + [.claim(count: room)]
        }
        if streamMayHaveMore {
            reading = true
            return actions + [.read(count: room)]
        }
        if blockingCount == 0 {
            if blockingAvailable {
                blockingCount = room
                actions.append(.blockingRead(count: room))
            } else if !pollArmed {
                pollArmed = true
                actions.append(.pollLater)
            }
        }
        return actions
    }

    /// An event that cannot happen in the state it arrived in: a bug in the actor. Traps in debug
    /// builds; release builds carry on with the state corrected.
    private func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
        assert(condition, "BatchConsumerState: \(message())")
    }
}
