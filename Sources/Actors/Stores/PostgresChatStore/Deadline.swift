import Actors
import ChatRuntime

/// The result of `operation`, or a ``ChatStoreError`` when `timeout` passes first; the
/// operation is then cancelled (postgres-nio drops a pending connection lease on cancellation)
/// but not awaited, so a caller never waits on a database that stopped answering.
func withDeadline<Value: Sendable>(
    _ timeout: Duration, _ operation: @escaping @Sendable () async throws -> Value
) async throws -> Value {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
        let gate = FirstResult(continuation)
        let work = Task {
            do {
                gate.resume(with: .success(try await operation()))
            } catch {
                gate.resume(with: .failure(error))
            }
        }
        Task {
            try? await Task.sleep(for: timeout)
            if gate.resume(with: .failure(ChatStoreError(.unavailable, "postgres: no answer within \(timeout)"))) {
                work.cancel()
            }
        }
    }
}

/// Resumes a continuation with whichever result comes first.
private final class FirstResult<Value: Sendable>: Sendable {
    private let continuation: AnnotatedMutex<CheckedContinuation<Value, any Error>?>

    init(_ continuation: CheckedContinuation<Value, any Error>) {
        self.continuation = AnnotatedMutex(continuation)
    }

    /// True when this call resumed the continuation.
    @discardableResult
    func resume(with result: Result<Value, any Error>) -> Bool {
        continuation.withLock { pending in
            guard let waiting = pending else { return false }
            pending = nil
            waiting.resume(with: result)
            return true
        }
    }
}
