import ChatRuntime

/// One batch store suspended until the write-back buffer has room. Resumed exactly once: by
/// the cache when a flush made room (or at shutdown), or by its own task's cancellation.
///
/// The continuation sits behind a lock rather than in the cache's actor state because the
/// cancellation handler runs synchronously on whatever thread cancels, where it can neither
/// enter the actor nor start a task to do so.
final class WriteBackWaiter: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Void, Never>?
        var resumed = false
    }

    private let state = AnnotatedMutex(State())

    /// Returns once ``resume()`` was called or the calling task was cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.resumed { return true }
                    state.continuation = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            resume()
        }
    }

    /// Ends the wait; calls after the first do nothing.
    func resume() {
        let continuation = state.withLock { state in
            state.resumed = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume()
    }
}
