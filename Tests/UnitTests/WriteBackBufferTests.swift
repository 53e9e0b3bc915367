import ChatRuntime
import Foundation
import Testing

@testable import Actors

@Suite("WriteBackBuffer")
struct WriteBackBufferTests {
    typealias Buffer = WriteBackBuffer
    typealias Event = Buffer.Event
    typealias Action = Buffer.Action

    static func entry(_ chat: String, _ second: Int) -> ParticipantsEntry {
        ParticipantsEntry(
            chatID: ChatID(validating: chat)!, participants: [], version: Int64(second),
            fetchedAt: Date(timeIntervalSince1970: 1_795_000_000 + Double(second)))
    }

    static let a1 = entry("a", 1), a2 = entry("a", 2), a0 = entry("a", 0)
    static let b1 = entry("b", 1), c1 = entry("c", 1)

    /// The states that matter, each reached through legal events only (limit 2, one chunk).
    enum State: String, CaseIterable, CustomTestStringConvertible {
        case empty, pendingOne, full, fullWithWaiter, flushing, flushingWithWaiter, shutDown
        var testDescription: String { rawValue }

        func buffer() -> Buffer {
            var buffer = Buffer(limit: 2, chunkSize: 2)
            func feed(_ events: Event...) {
                for event in events {
                    #expect(buffer.isAllowed(event), "\(event) while building \(self)")
                    _ = buffer.handle(event)
                }
            }
            switch self {
            case .empty: break
            case .pendingOne: feed(.keep([a1], batch: false))
            case .full: feed(.keep([a1, b1], batch: false))
            case .fullWithWaiter: feed(.keep([a1, b1], batch: false), .keep([c1], batch: true))
            case .flushing: feed(.keep([a1, b1], batch: false), .redisReady)
            case .flushingWithWaiter: feed(.keep([a1, b1], batch: false), .keep([c1], batch: true), .redisReady)
            case .shutDown: feed(.shutdown)
            }
            return buffer
        }
    }

    /// The events of the table, named.
    enum Probe: String, CaseIterable, CustomTestStringConvertible {
        case keepSingle, keepBatch, redisReady, retryDueReady, retryDueNotReady, chunkWritten, chunkWrittenForeign
        case flushFailed, waiterCancelled, waiterNeverIssued, shutdown
        var testDescription: String { rawValue }

        var event: Event {
            switch self {
            case .keepSingle: .keep([c1], batch: false)
            case .keepBatch: .keep([c1], batch: true)
            case .redisReady: .redisReady
            case .retryDueReady: .retryDue(redisReady: true)
            case .retryDueNotReady: .retryDue(redisReady: false)
            case .chunkWritten: .chunkWritten(accepted: [a1, b1], refused: 0)
            // An entry the chunk in flight did not carry.
            case .chunkWrittenForeign: .chunkWritten(accepted: [c1], refused: 0)
            case .flushFailed: .flushFailed
            case .waiterCancelled: .waiterCancelled(0)
            case .waiterNeverIssued: .waiterCancelled(99)
            case .shutdown: .shutdown
            }
        }
    }

    /// Which events can happen in which state; the others trap in debug builds.
    static func allowed(_ state: State, _ probe: Probe) -> Bool {
        let flushing = state == .flushing || state == .flushingWithWaiter
        switch probe {
        case .keepSingle, .keepBatch: return true
        case .waiterCancelled: return state == .fullWithWaiter || state == .flushingWithWaiter
        case .waiterNeverIssued, .chunkWrittenForeign: return false
        case _ where state == .shutDown: return false
        case .redisReady: return true
        // Every state but `empty` kept an entry after a failed write, which scheduled a retry.
        case .retryDueReady, .retryDueNotReady: return state != .empty
        case .chunkWritten, .flushFailed: return flushing
        // The cache ends every flush before it shuts the buffer.
        case .shutdown: return !flushing
        }
    }

    @Test("which (state, event) pairs can happen", arguments: State.allCases, Probe.allCases)
    func allowedPairs(state: State, probe: Probe) {
        #expect(state.buffer().isAllowed(probe.event) == Self.allowed(state, probe))
    }

    /// Chunks come from a dictionary: compared as sets.
    static func chunk(_ actions: [Action]) -> Set<ParticipantsEntry>? {
        for case .writeChunk(let entries) in actions { return Set(entries) }
        return nil
    }

    static func withoutChunks(_ actions: [Action]) -> [Action] {
        actions.filter { if case .writeChunk = $0 { false } else { true } }
    }

    // MARK: keep

    @Test func singleStoresKeepTheNewestPerChatAndScheduleOneRetry() {
        var buffer = State.empty.buffer()
        #expect(buffer.handle(.keep([Self.a1], batch: false)) == [.scheduleRetry])
        #expect(buffer.retryScheduled)
        #expect(buffer.handle(.keep([Self.a2], batch: false)) == [])
        #expect(buffer.entry(for: Self.a1.chatID) == Self.a2)
        #expect(buffer.handle(.keep([Self.a0], batch: false)) == [])
        #expect(buffer.entry(for: Self.a1.chatID) == Self.a2, "an older entry never replaces a newer one")
        #expect(buffer.count == 1)
    }

    @Test func aSingleStoreFindingNoRoomOverflowsButStillReplaces() {
        var buffer = State.full.buffer()
        #expect(buffer.handle(.keep([Self.c1], batch: false)) == [.overflowed([Self.c1])])
        #expect(buffer.handle(.keep([Self.a2], batch: false)) == [])
        #expect(buffer.entry(for: Self.a1.chatID) == Self.a2)
        #expect(buffer.count == 2)
        #expect(buffer.waiters.isEmpty)
    }

    @Test func aBatchFindingNoRoomKeepsWhatFitsAndWaitsWithTheRest() {
        var buffer = State.full.buffer()
        #expect(buffer.handle(.keep([Self.a2, Self.c1], batch: true)) == [.wait(id: 0, remaining: [Self.c1])])
        #expect(buffer.entry(for: Self.a1.chatID) == Self.a2)
        #expect(buffer.waiters == [0])
        #expect(buffer.count == 2)
        // A second waiter gets the next id.
        #expect(buffer.handle(.keep([Self.c1], batch: true)) == [.wait(id: 1, remaining: [Self.c1])])
        #expect(buffer.waiters == [0, 1])
    }

    @Test func withALimitOfZeroABatchOverflowsInsteadOfWaitingForever() {
        var buffer = Buffer(limit: 0)
        #expect(buffer.handle(.keep([Self.a1], batch: true)) == [.overflowed([Self.a1])])
        #expect(!buffer.retryScheduled)
    }

    @Test func afterShutdownABatchOverflowsAndNoRetryIsScheduled() {
        var buffer = State.shutDown.buffer()
        let actions = buffer.handle(.keep([Self.a1, Self.b1, Self.c1], batch: true))
        #expect(actions == [.overflowed([Self.c1])])
        #expect(buffer.count == 2)
        #expect(!buffer.retryScheduled)
    }

    // MARK: flushing

    @Test func redisReadyWritesTheWholeBufferInChunks() throws {
        var buffer = Buffer(limit: 3, chunkSize: 2)
        _ = buffer.handle(.keep([Self.a1, Self.b1, Self.c1], batch: false))
        let first = buffer.handle(.redisReady)
        let firstChunk = try #require(Self.chunk(first))
        #expect(first.count == 1 && firstChunk.count == 2)
        #expect(buffer.handle(.redisReady) == [], "a flush in progress is not started twice")
        let second = buffer.handle(.chunkWritten(accepted: Array(firstChunk), refused: 0))
        let secondChunk = try #require(Self.chunk(second))
        #expect(second.count == 1 && secondChunk.count == 1)
        #expect(secondChunk.union(firstChunk) == [Self.a1, Self.b1, Self.c1])
        #expect(
            buffer.handle(.chunkWritten(accepted: Array(secondChunk), refused: 0)) == [
                .flushFinished(written: 3, pending: 0)
            ])
        #expect(buffer.phase == .idle)
        #expect(buffer.count == 0)
    }

    @Test func nothingToFlushIsNoFlush() {
        var buffer = State.empty.buffer()
        #expect(buffer.handle(.redisReady) == [])
        #expect(buffer.phase == .idle)
    }

    @Test func aFlushThatMadeRoomResumesTheWaiters() {
        var buffer = State.flushingWithWaiter.buffer()
        let actions = buffer.handle(.chunkWritten(accepted: [Self.a1, Self.b1], refused: 0))
        #expect(actions == [.resumeWaiters([0]), .flushFinished(written: 2, pending: 0)])
        #expect(buffer.waiters.isEmpty)
        // The resumed store keeps its entry now.
        #expect(buffer.handle(.keep([Self.c1], batch: true)) == [])
        #expect(buffer.entry(for: Self.c1.chatID) == Self.c1)
    }

    @Test func anEntryRewrittenNewerDuringTheFlushIsNotDroppedByIt() {
        var buffer = State.pendingOne.buffer()
        _ = buffer.handle(.keep([Self.b1], batch: false))
        _ = buffer.handle(.retryDue(redisReady: true)) // the flush begins; the retry is used up
        #expect(buffer.handle(.keep([Self.a2], batch: false)) == [.scheduleRetry])
        let actions = buffer.handle(.chunkWritten(accepted: [Self.a1, Self.b1], refused: 0))
        // The flush goes on with the newer entry.
        #expect(actions == [.writeChunk([Self.a2])])
        #expect(buffer.entry(for: Self.a1.chatID) == Self.a2)
        #expect(buffer.entry(for: Self.b1.chatID) == nil)
    }

    @Test func aRefusedChunkEndsTheFlushAndSchedulesARetry() {
        var buffer = State.full.buffer()
        _ = buffer.handle(.retryDue(redisReady: true))
        #expect(!buffer.retryScheduled)
        let actions = buffer.handle(.chunkWritten(accepted: [Self.a1], refused: 1))
        #expect(actions == [.flushFinished(written: 1, pending: 1), .scheduleRetry])
        #expect(buffer.phase == .idle)
        #expect(buffer.retryScheduled)
    }

    @Test func aFailedFlushKeepsEverythingAndRetriesOnce() {
        var flushing = State.flushing.buffer()
        // The retry scheduled by the keep is still pending: no second one.
        #expect(flushing.handle(.flushFailed) == [.flushFinished(written: 0, pending: 2)])
        #expect(flushing.count == 2)
        var retried = State.full.buffer()
        _ = retried.handle(.retryDue(redisReady: true))
        #expect(retried.handle(.flushFailed) == [.flushFinished(written: 0, pending: 2), .scheduleRetry])
    }

    @Test func aRetryWhileRedisIsNotReadyWaitsForReady() {
        var buffer = State.full.buffer()
        #expect(buffer.handle(.retryDue(redisReady: false)) == [])
        #expect(!buffer.retryScheduled)
        #expect(buffer.phase == .idle)
        #expect(Self.chunk(buffer.handle(.redisReady)) == [Self.a1, Self.b1])
    }

    @Test func aRetryDuringAFlushLeavesItToThatFlush() {
        var buffer = State.flushing.buffer()
        #expect(buffer.handle(.retryDue(redisReady: true)) == [])
        #expect(!buffer.retryScheduled)
        // The flush ends with entries left: it schedules the next retry itself.
        #expect(
            Self.withoutChunks(buffer.handle(.flushFailed)) == [.flushFinished(written: 0, pending: 2), .scheduleRetry])
    }

    // MARK: waiters and shutdown

    @Test func aCancelledWaiterIsForgottenOnceAndAResumedOneIsIgnored() {
        var buffer = State.fullWithWaiter.buffer()
        #expect(buffer.handle(.waiterCancelled(0)) == [])
        #expect(buffer.waiters.isEmpty)
        // Resumed and cancelled at once: the second report finds nothing.
        #expect(buffer.isAllowed(.waiterCancelled(0)))
        #expect(buffer.handle(.waiterCancelled(0)) == [])
    }

    @Test func shutdownResumesEveryWaiterAndStopsRetrying() {
        var buffer = State.fullWithWaiter.buffer()
        _ = buffer.handle(.keep([Self.c1], batch: true))
        #expect(buffer.handle(.shutdown) == [.resumeWaiters([0, 1])])
        #expect(buffer.phase == .shutDown)
        #expect(!buffer.retryScheduled)
        #expect(buffer.count == 2, "what is pending stays (in L1 too); nobody writes it any more")
    }

    // MARK: invariants over random legal sequences

    @Test(arguments: [1, 2, 3, 4, 5])
    func neverOverTheLimitAndNewestWinsWhatever(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var buffer = Buffer(limit: 3, chunkSize: 2)
        var inFlight: [ParticipantsEntry] = []
        let chats = ["a", "b", "c", "d", "e"]
        for step in 0..<2000 {
            var candidates: [Event] = [
                .keep(
                    [Self.entry(chats.randomElement(using: &random)!, Int.random(in: 0..<50, using: &random))],
                    batch: false),
                .keep(
                    (0..<3).map { _ in
                        Self.entry(chats.randomElement(using: &random)!, Int.random(in: 0..<50, using: &random))
                    }, batch: true),
                .redisReady, .retryDue(redisReady: Bool.random(using: &random)), .flushFailed,
                .chunkWritten(accepted: inFlight, refused: 0),
                .chunkWritten(accepted: Array(inFlight.dropLast()), refused: inFlight.isEmpty ? 0 : 1),
            ]
            candidates += buffer.waiters.map { .waiterCancelled($0) }
            candidates = candidates.filter(buffer.isAllowed)
            let event = candidates.randomElement(using: &random)!
            let before = buffer.pending
            let actions = buffer.handle(event)
            #expect(buffer.count <= buffer.limit, "step \(step)")
            if case .keep(let kept, _) = event {
                for (chat, old) in before {
                    let newest = kept.filter { $0.chatID == chat }.map(\.fetchedAt).reduce(old.fetchedAt, max)
                    #expect(buffer.pending[chat]?.fetchedAt == newest, "step \(step)")
                }
            }
            if case .chunkWritten = event { inFlight = [] }
            if case .flushFailed = event { inFlight = [] }
            for case .writeChunk(let chunk) in actions { inFlight = chunk }
        }
    }
}
