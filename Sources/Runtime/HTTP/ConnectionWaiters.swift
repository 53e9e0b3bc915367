/// Requests of an ``HTTPClient`` waiting for a connection, first come first served, each with
/// its deadline timer. Loop-confined: used by the client actor only.
struct ConnectionWaiters {
    enum Outcome: Sendable {
        /// A connection became idle or a place freed up: look again.
        case woken
        case timedOut
        case cancelled
    }

    private struct Waiter {
        var continuation: CheckedContinuation<Outcome, Never>
        var timer: LoopTimer
    }

    private var waiting: [UInt64: Waiter] = [:]
    private var order: [UInt64] = []
    private var lastID: UInt64 = 0

    mutating func nextID() -> UInt64 {
        lastID += 1
        return lastID
    }

    mutating func add(_ id: UInt64, continuation: CheckedContinuation<Outcome, Never>, timer: LoopTimer) {
        waiting[id] = Waiter(continuation: continuation, timer: timer)
        order.append(id)
    }

    /// Wakes the longest waiting request, if any. Resuming only schedules its task, so this is
    /// safe inside an evhttp callback.
    mutating func wakeOne() {
        while !order.isEmpty {
            let id = order.removeFirst()
            if waiting[id] != nil {
                end(id, with: .woken)
                return
            }
        }
    }

    mutating func wakeAll() {
        for id in order { end(id, with: .woken) }
        order = []
    }

    /// Ends one wait (timeout, cancellation, wake-up); nothing if it already ended.
    mutating func end(_ id: UInt64, with outcome: Outcome) {
        guard let waiter = waiting.removeValue(forKey: id) else { return }
        waiter.timer.cancel()
        waiter.continuation.resume(returning: outcome)
    }
}
