import ChatRuntime
import Foundation
import Logging

@testable import Actors

/// Test doubles for the sync layer: in-memory implementations of our own upstream and store
/// protocols, deterministic, with gates that hold calls until a test opens them.
enum SyncDoubles {
    static let logger = Logger(label: "sync-tests") { _ in SwiftLogNoOpLogHandler() }

    static func chat(_ text: String) -> ChatID {
        ChatID(validating: text)!
    }

    /// `count` chats named `prefix-0000`, `prefix-0001`, ...
    static func chats(_ count: Int, prefix: String = "c") -> [ChatID] {
        (0..<count).map { chat(String(format: "%@-%04d", prefix, $0)) }
    }

    static func upstreamChat(_ id: ChatID, version: Int64 = 1) -> UpstreamChat {
        UpstreamChat(
            chatID: id,
            participants: [
                Participant(userID: "u-\(id.rawValue)", displayName: "User", avatarURL: nil, role: "member")
            ],
            version: version)
    }
}

/// Holds callers until opened; waiting is cancellable.
final class AsyncGate: Sendable {
    private struct State {
        var open = false
        var nextID: UInt64 = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    private let state: AnnotatedMutex<State>

    init(open: Bool = false) {
        state = AnnotatedMutex(State(open: open))
    }

    var waiting: Int { state.withLock { $0.waiters.count } }

    func wait() async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let immediate: Result<Void, any Error>? = state.withLock { state in
                    if state.open { return .success(()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0) }
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.continuation.resume() }
    }
}

/// An upstream that knows a fixed list of chats and lists them in pages whose token is the
/// offset. Failures, partial answers and malformed chats are scripted per chat or per page.
final class FakeUpstream: ParticipantsUpstream {
    struct State {
        var known: [ChatID]
        var knownSet: Set<ChatID>
        /// Batches containing one of these fail with a server error.
        var failBatchesWith: Set<ChatID> = []
        /// Left out of batch answers (partial answers).
        var omitted: Set<ChatID> = []
        /// Sent back malformed (in `rejected`).
        var malformed: Set<ChatID> = []
        /// Page index -> failures still to come (Int.max: always).
        var pageFailures: [Int: Int] = [:]
        var pageFailureCode = UpstreamError.Code.server
        var batchCalls: [[ChatID]] = []
        var listCalls: [String?] = []
        var inFlight = 0
        var peakInFlight = 0
    }

    let state: AnnotatedMutex<State>
    let batchGate: AsyncGate
    let listGate: AsyncGate

    init(chats: [ChatID], batchGate: AsyncGate = AsyncGate(open: true), listGate: AsyncGate = AsyncGate(open: true)) {
        state = AnnotatedMutex(State(known: chats, knownSet: Set(chats)))
        self.batchGate = batchGate
        self.listGate = listGate
    }

    var batchCalls: [[ChatID]] { state.withLock { $0.batchCalls } }
    var listCalls: [String?] { state.withLock { $0.listCalls } }
    var inFlight: Int { state.withLock { $0.inFlight } }
    var peakInFlight: Int { state.withLock { $0.peakInFlight } }

    func participants(of chat: ChatID) async throws(UpstreamError) -> UpstreamChat? {
        state.withLock { $0.knownSet.contains(chat) } ? SyncDoubles.upstreamChat(chat) : nil
    }

    func batchGet(_ chats: [ChatID]) async throws(UpstreamError) -> BatchGetResponse {
        state.withLock { state in
            state.batchCalls.append(chats)
            state.inFlight += 1
            state.peakInFlight = max(state.peakInFlight, state.inFlight)
        }
        defer { state.withLock { $0.inFlight -= 1 } }
        do {
            try await batchGate.wait()
        } catch {
            throw UpstreamError(code: .connection, message: "cancelled")
        }
        // Let other batches interleave, as a real network call would.
        await Task.yield()
        return try state.withLock { state throws(UpstreamError) in
            if chats.contains(where: state.failBatchesWith.contains) {
                throw UpstreamError(code: .server, message: "503 from upstream", status: 503)
            }
            var response = BatchGetResponse(chats: [], notFound: [])
            for chat in chats where !state.omitted.contains(chat) {
                if state.malformed.contains(chat) {
                    response.rejected.append(
                        UpstreamDecodingError(
                            reason: .wrongType, path: "$.chats[0].version", detail: "expected an integer",
                            chatID: chat.rawValue))
                } else if state.knownSet.contains(chat) {
                    response.chats.append(SyncDoubles.upstreamChat(chat))
                } else {
                    response.notFound.append(chat.rawValue)
                }
            }
            return response
        }
    }

    func listChats(pageSize: Int, pageToken: String?) async throws(UpstreamError) -> ChatListPage {
        state.withLock { $0.listCalls.append(pageToken) }
        do {
            try await listGate.wait()
        } catch {
            throw UpstreamError(code: .connection, message: "cancelled")
        }
        return try state.withLock { state throws(UpstreamError) in
            let offset = pageToken.flatMap { Int($0) } ?? 0
            let index = offset / pageSize
            if let remaining = state.pageFailures[index], remaining > 0 {
                if remaining != .max { state.pageFailures[index] = remaining - 1 }
                throw UpstreamError(code: state.pageFailureCode, message: "page \(index) failed")
            }
            let end = min(offset + pageSize, state.known.count)
            let ids = offset < end ? Array(state.known[offset..<end]) : []
            return ChatListPage(chatIDs: ids, nextPageToken: end < state.known.count ? String(end) : nil)
        }
    }
}

/// A store in memory: entries, not-found marks, tracked chats with their last read time, and a
/// log of every `storeBatch` call. `gate` holds writes (a Redis that does not answer).
final class FakeStore: ParticipantsStore {
    struct State {
        var entries: [ChatID: ParticipantsEntry] = [:]
        var notFound: Set<ChatID> = []
        var lastRead: [ChatID: Date] = [:]
        var writes: [ChatID: Int] = [:]
        var storeCalls: [(entries: [ChatID], notFound: [ChatID])] = []
        var outcome = StoreOutcome.written
        var writing = 0
    }

    let state = AnnotatedMutex(State())
    let gate: AsyncGate

    init(gate: AsyncGate = AsyncGate(open: true)) {
        self.gate = gate
    }

    var storeCalls: [(entries: [ChatID], notFound: [ChatID])] { state.withLock { $0.storeCalls } }
    var writes: [ChatID: Int] { state.withLock { $0.writes } }
    var writing: Int { state.withLock { $0.writing } }

    func setEntry(_ chat: ChatID, fetchedAt: Date) {
        state.withLock { state in
            state.entries[chat] = ParticipantsEntry(SyncDoubles.upstreamChat(chat), fetchedAt: fetchedAt)
        }
    }

    func markRead(_ chat: ChatID, at date: Date) {
        state.withLock { $0.lastRead[chat] = date }
    }

    func storeBatch(_ entries: [ParticipantsEntry], notFound: [ChatID]) async -> StoreOutcome {
        state.withLock { $0.writing += 1 }
        // A cancelled wait stands for a write interrupted by shutdown; the data is kept for
        // write-back, as the real cache would.
        let interrupted = (try? await gate.wait()) == nil
        return state.withLock { state in
            state.writing -= 1
            state.storeCalls.append((entries.map(\.chatID), notFound))
            for entry in entries {
                state.entries[entry.chatID] = entry
                state.writes[entry.chatID, default: 0] += 1
            }
            state.notFound.formUnion(notFound)
            return interrupted ? .deferred : state.outcome
        }
    }

    func fetchedAt(of chats: [ChatID]) async -> [ChatID: Date] {
        state.withLock { state in
            var result: [ChatID: Date] = [:]
            for chat in chats {
                if let entry = state.entries[chat] { result[chat] = entry.fetchedAt }
            }
            return result
        }
    }

    func trackedChats(since: Date) async -> [ChatID] {
        state.withLock { state in
            state.lastRead.filter { $0.value >= since }.keys.sorted { $0.rawValue < $1.rawValue }
        }
    }
}

/// A count shared between tasks.
final class SyncTestCounter: Sendable {
    private let storage = AnnotatedMutex(0)
    func increment() { storage.withLock { $0 += 1 } }
    var value: Int { storage.withLock { $0 } }
}
