import ChatRuntime
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing
import TestSupport

@testable import ChatService

/// ``DrainingTogether``: its services see graceful shutdown at the same moment (a plain
/// `ServiceGroup` would signal one only after the other finished), and one failing ends them all.
@Suite("Draining together", .timeLimit(.minutes(1)))
struct DrainingTogetherTests {
    /// Counts the services that have seen graceful shutdown; lets each wait for the others.
    final class Rendezvous: Sendable {
        private let seen = AnnotatedMutex(0)
        let expected: Int

        init(expected: Int) {
            self.expected = expected
        }

        func arrive() {
            seen.withLock { $0 += 1 }
        }

        /// Whether all arrived within `timeout`.
        func waitForAll(timeout: Duration) async -> Bool {
            await eventually(timeout: timeout, every: .milliseconds(5)) { self.seen.withLock { $0 } >= self.expected }
        }
    }

    /// A value shared between a test and its services.
    final class Shared<Value: Sendable>: Sendable {
        private let value: AnnotatedMutex<Value>

        init(_ value: Value) {
            self.value = AnnotatedMutex(value)
        }

        func update(_ body: (inout Value) -> Void) {
            value.withLock { body(&$0) }
        }

        var current: Value { value.withLock { $0 } }
    }

    /// Waits for graceful shutdown, then finishes only once every service has seen it too.
    struct DrainingService: Service {
        let rendezvous: Rendezvous
        let metAll: Shared<[Bool]>

        func run() async throws {
            try? await gracefulShutdown()
            rendezvous.arrive()
            let met = await rendezvous.waitForAll(timeout: .seconds(3))
            metAll.update { $0.append(met) }
        }
    }

    struct Failing: Service {
        struct Failure: Error, Equatable {}

        func run() async throws {
            throw Failure()
        }
    }

    struct WaitsForCancellation: Service {
        let cancelled: Shared<Bool>

        func run() async throws {
            do {
                // Runs until cancelled; the 30 s only bound a test that would never cancel it.
                try await Task.sleep(for: .seconds(30))
            } catch {
                cancelled.update { $0 = true }
                throw error
            }
        }
    }

    @Test func everyServiceSeesGracefulShutdownBeforeAnyFinishes() async throws {
        let rendezvous = Rendezvous(expected: 2)
        let met = Shared<[Bool]>([])
        let together = DrainingTogether([
            DrainingService(rendezvous: rendezvous, metAll: met), DrainingService(rendezvous: rendezvous, metAll: met),
        ])
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await together.run() }
                trigger.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
        // Each service waited for the other before finishing: both had the signal at once.
        #expect(met.current == [true, true])
    }

    @Test func aServiceThatFailsCancelsTheOthersAndItsErrorSurfaces() async throws {
        let cancelled = Shared(false)
        let together = DrainingTogether([Failing(), WaitsForCancellation(cancelled: cancelled)])
        await #expect(throws: Failing.Failure()) {
            try await together.run()
        }
        #expect(cancelled.current)
    }

    @Test func describesItsServices() {
        let together = DrainingTogether([Failing(), Failing()])
        #expect(together.description == "DrainingTogether(Failing, Failing)")
    }
}
