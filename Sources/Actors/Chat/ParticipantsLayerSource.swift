import ChatRuntime

/// The participants layer behind the chat core: ``ParticipantsReader``'s read path (L1, Redis,
/// upstream, stale-if-error), bounded by `timeout`. Past the bound, or when nothing answers,
/// the last known list in L1 (at any age) stands in, marked stale: a chat request never waits
/// for a slow upstream or a frozen Redis longer than the bound.
public struct ParticipantsLayerSource: ChatParticipantsSource {
    public let reader: ParticipantsReader
    public let timeout: Duration

    public init(reader: ParticipantsReader, timeout: Duration) {
        self.reader = reader
        self.timeout = timeout
    }

    public func participants(of chat: ChatID) async -> ChatParticipants {
        let reader = reader
        let outcome = await firstOf(timeout) { await reader.read(chat) }
        switch outcome {
        case .entry(let entry, let stale, _)?:
            return .known(entry.participants, stale: stale)
        case .notFound?:
            return .unknownChat
        case .unavailable?, nil:
            if let last = await reader.cache.peekL1(chat) { return .known(last.participants, stale: true) }
            return .unavailable
        }
    }

    public func track(_ chat: ChatID) async {
        await reader.cache.track(chat)
    }
}

/// The result of `operation`, or nil when `timeout` passes first. The operation is not
/// cancelled (the read path may be coalescing other readers on the same fetch); it finishes on
/// its own and its result is dropped.
func firstOf<Value: Sendable>(
    _ timeout: Duration, _ operation: @escaping @Sendable () async -> Value
) async -> Value? {
    await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
        let gate = ResumeOnce(continuation)
        let timer = Task {
            try? await Task.sleep(for: timeout)
            gate.resume(nil)
        }
        Task {
            let value = await operation()
            gate.resume(value)
            timer.cancel()
        }
    }
}

/// Resumes a continuation with whichever result comes first.
private final class ResumeOnce<Value: Sendable>: Sendable {
    private let continuation: AnnotatedMutex<CheckedContinuation<Value?, Never>?>

    init(_ continuation: CheckedContinuation<Value?, Never>) {
        self.continuation = AnnotatedMutex(continuation)
    }

    func resume(_ value: Value?) {
        continuation.withLock { pending in
            pending?.resume(returning: value)
            pending = nil
        }
    }
}
