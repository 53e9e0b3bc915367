import Synchronization

/// A FIFO between producers and a consumer with room for `capacity` elements: `send` suspends
/// while it is full, so a slow consumer slows the producer down instead of growing memory.
///
/// Hand-written rather than swift-async-algorithms' `AsyncChannel` plus `.buffer(policy:
/// .bounded(n))`: the channel is a rendezvous, and the buffer adds an iterator that pulls one
/// more element than it holds, so the bound is only approximate; neither lets the owner count
/// what is queued nor take back what is left at shutdown, which the run accounting needs. This
/// queue is exact (an element is either queued, handed to a receiver, or refused), and a
/// cancelled sender's element is refused rather than lost.
final class BoundedQueue<Element: Sendable>: Sendable {
    /// Why an element was refused.
    enum SendError: Error, Hashable {
        /// ``close()`` was called.
        case closed
        /// The sending task was cancelled while waiting for room.
        case cancelled
    }

    private struct Sender {
        let id: UInt64
        let element: Element
        let continuation: CheckedContinuation<SendError?, Never>
    }

    private struct Receiver {
        let id: UInt64
        let continuation: CheckedContinuation<Element?, Never>
    }

    private enum SendAction {
        case resume(SendError?)
        case handOver(CheckedContinuation<Element?, Never>)
        case wait
    }

    private struct State {
        var buffer: [Element] = []
        var senders: [Sender] = []
        var receivers: [Receiver] = []
        var closed = false
        var nextID: UInt64 = 0
    }

    /// How many elements may wait in the queue.
    let capacity: Int
    private let state = Mutex(State())

    /// - Precondition: `capacity >= 1`.
    init(capacity: Int) {
        precondition(capacity >= 1, "a bounded queue needs room for at least one element")
        self.capacity = capacity
    }

    /// Elements waiting to be received.
    var count: Int { state.withLock { $0.buffer.count } }

    /// Senders suspended because the queue is full.
    var waitingSenders: Int { state.withLock { $0.senders.count } }

    /// Queues `element`, waiting while the queue is full.
    func send(_ element: Element) async throws(SendError) {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        let refusal = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<SendError?, Never>) in
                let action = state.withLock { state -> SendAction in
                    if state.closed { return .resume(.closed) }
                    if Task.isCancelled { return .resume(.cancelled) }
                    if !state.receivers.isEmpty {
                        return .handOver(state.receivers.removeFirst().continuation)
                    }
                    if state.buffer.count < capacity {
                        state.buffer.append(element)
                        return .resume(nil)
                    }
                    state.senders.append(Sender(id: id, element: element, continuation: continuation))
                    return .wait
                }
                switch action {
                case .resume(let refusal):
                    continuation.resume(returning: refusal)
                case .handOver(let receiver):
                    receiver.resume(returning: element)
                    continuation.resume(returning: nil)
                case .wait:
                    break
                }
            }
        } onCancel: {
            let sender = state.withLock { state -> Sender? in
                guard let index = state.senders.firstIndex(where: { $0.id == id }) else { return nil }
                return state.senders.remove(at: index)
            }
            sender?.continuation.resume(returning: .cancelled)
        }
        if let refusal { throw refusal }
    }

    /// The next element, waiting for one; nil once the queue is closed and empty, or when the
    /// receiving task is cancelled.
    func receive() async -> Element? {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Element?, Never>) in
                let (immediate, admitted) = state.withLock { state -> (Element??, Sender?) in
                    if Task.isCancelled { return (.some(nil), nil) }
                    if !state.buffer.isEmpty {
                        let element = state.buffer.removeFirst()
                        // The room just made goes to the longest-waiting sender.
                        guard !state.senders.isEmpty else { return (element, nil) }
                        let sender = state.senders.removeFirst()
                        state.buffer.append(sender.element)
                        return (element, sender)
                    }
                    if state.closed { return (.some(nil), nil) }
                    state.receivers.append(Receiver(id: id, continuation: continuation))
                    return (nil, nil)
                }
                admitted?.continuation.resume(returning: nil)
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let receiver = state.withLock { state -> Receiver? in
                guard let index = state.receivers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.receivers.remove(at: index)
            }
            receiver?.continuation.resume(returning: nil)
        }
    }

    /// Refuses further elements and wakes everyone waiting: senders are refused with
    /// ``SendError/closed``, receivers get nil. Queued elements stay for ``receive()`` or
    /// ``removeAll()``.
    func close() {
        let (senders, receivers) = state.withLock { state in
            state.closed = true
            defer {
                state.senders.removeAll()
                state.receivers.removeAll()
            }
            return (state.senders, state.receivers)
        }
        for sender in senders { sender.continuation.resume(returning: .closed) }
        for receiver in receivers { receiver.continuation.resume(returning: nil) }
    }

    /// Takes every queued element, oldest first.
    func removeAll() -> [Element] {
        state.withLock { state in
            defer { state.buffer.removeAll() }
            return state.buffer
        }
    }
}
