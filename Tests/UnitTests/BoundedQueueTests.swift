import TestSupport
import Testing

@testable import Actors

@Suite("BoundedQueue", .timeLimit(.minutes(1)))
struct BoundedQueueTests {
    @Test func deliversInOrder() async throws {
        let queue = BoundedQueue<Int>(capacity: 3)
        try await queue.send(1)
        try await queue.send(2)
        #expect(queue.count == 2)
        #expect(await queue.receive() == 1)
        #expect(await queue.receive() == 2)
        #expect(queue.count == 0)
    }

    @Test func senderWaitsWhileFullAndIsAdmittedInOrder() async throws {
        let queue = BoundedQueue<Int>(capacity: 2)
        try await queue.send(1)
        try await queue.send(2)
        let third = Task { try await queue.send(3) }
        #expect(await eventually(timeout: .seconds(5)) { queue.waitingSenders == 1 })
        #expect(queue.count == 2)
        #expect(await queue.receive() == 1)
        try await third.value
        #expect(queue.count == 2)
        #expect(queue.waitingSenders == 0)
        #expect(await queue.receive() == 2)
        #expect(await queue.receive() == 3)
    }

    @Test func receiverWaitsForASender() async throws {
        let queue = BoundedQueue<Int>(capacity: 1)
        let receiver = Task { await queue.receive() }
        try await Task.sleep(for: .milliseconds(10))
        try await queue.send(7)
        #expect(await receiver.value == 7)
        #expect(queue.count == 0)
    }

    @Test func closeRefusesSendersAndDrainsThenEnds() async throws {
        let queue = BoundedQueue<Int>(capacity: 1)
        try await queue.send(1)
        let blocked = Task { try await queue.send(2) }
        #expect(await eventually(timeout: .seconds(5)) { queue.waitingSenders == 1 })
        queue.close()
        await #expect(throws: BoundedQueue<Int>.SendError.closed) { try await blocked.value }
        await #expect(throws: BoundedQueue<Int>.SendError.closed) { try await queue.send(3) }
        #expect(await queue.receive() == 1)
        #expect(await queue.receive() == nil)
    }

    @Test func closeWakesAWaitingReceiver() async {
        let queue = BoundedQueue<Int>(capacity: 1)
        let receiver = Task { await queue.receive() }
        try? await Task.sleep(for: .milliseconds(10))
        queue.close()
        #expect(await receiver.value == nil)
    }

    @Test func cancelledSenderIsRefusedAndItsElementNotQueued() async throws {
        let queue = BoundedQueue<Int>(capacity: 1)
        try await queue.send(1)
        let blocked = Task { try await queue.send(2) }
        #expect(await eventually(timeout: .seconds(5)) { queue.waitingSenders == 1 })
        blocked.cancel()
        await #expect(throws: BoundedQueue<Int>.SendError.cancelled) { try await blocked.value }
        #expect(queue.waitingSenders == 0)
        queue.close()
        #expect(queue.removeAll() == [1])
    }

    @Test func cancelledReceiverGetsNil() async {
        let queue = BoundedQueue<Int>(capacity: 1)
        let receiver = Task { await queue.receive() }
        try? await Task.sleep(for: .milliseconds(10))
        receiver.cancel()
        #expect(await receiver.value == nil)
    }

    @Test func producerNeverGetsMoreThanCapacityAhead() async throws {
        let queue = BoundedQueue<Int>(capacity: 4)
        let accepted = SyncTestCounter()
        let producer = Task {
            for value in 0..<100 {
                try await queue.send(value)
                accepted.increment()
            }
        }
        var received: [Int] = []
        for _ in 0..<100 {
            // Whatever the interleaving, the producer is at most `capacity` elements ahead.
            #expect(accepted.value - received.count <= 4)
            guard let value = await queue.receive() else { break }
            received.append(value)
        }
        try await producer.value
        #expect(received == Array(0..<100))
    }
}

