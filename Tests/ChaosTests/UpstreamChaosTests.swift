import FaultInjection
import Foundation
import StubUpstream
import Testing
import TestSupport

extension ChaosSuite {
    /// The upstream API timing out, failing, rate-limiting, sending garbage and dripping, each
    /// under read load with manual refreshes and a full run while it lasts.
    @Suite("Upstream faults", .timeLimit(.minutes(5)))
    struct UpstreamFaults {
        static var duration: Duration { ChaosMode.pick(fast: .seconds(4), full: .seconds(10)) }

        /// A fault set on the stub for the scenario's duration.
        static func stubFault(_ change: @escaping @Sendable (inout StubFaults) -> Void) -> Fault {
            Fault(target: .upstream, duration: duration) { environment in
                await environment.stub.updateFaults(change)
                return {
                    await environment.stub.clearFaults()
                    return []
                }
            }
        }

        /// A proxy mode in front of the stub for the scenario's duration.
        static func proxyFault(_ mode: FaultMode) -> Fault {
            Fault(target: .upstream, duration: duration) { environment in
                await environment.upstreamProxy.setMode(mode)
                return {
                    await environment.upstreamProxy.setMode(.pass)
                    return []
                }
            }
        }

        static func run(_ name: String, _ fault: Fault) async throws {
            let record = try await ChaosScenario.run(name, fault: fault)
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }

        @Test func upstreamTimesOut() async throws {
            try await Self.run("upstream timeouts (black-holed)", Self.proxyFault(.blackhole))
        }

        @Test func upstream5xxStorm() async throws {
            try await Self.run("upstream 5xx storm", Self.stubFault { $0.errorRate = 1 })
        }

        @Test func upstream429s() async throws {
            try await Self.run("upstream 429 with Retry-After", Self.stubFault {
                $0.rate429 = 1
                $0.retryAfterSeconds = 1
            })
        }

        @Test func upstreamMalformedJSON() async throws {
            try await Self.run("upstream malformed JSON", Self.stubFault {
                $0.malformedRate = 1
                $0.malformedKind = .mixed
            })
        }

        @Test func upstreamSlowDrip() async throws {
            try await Self.run("upstream slow-drip bodies (200 B/s)", Self.proxyFault(.bandwidth(bytesPerSecond: 200)))
        }

        @Test func upstreamRepliesCutMidBody() async throws {
            let fault = Fault(target: .upstream, duration: Self.duration) { environment in
                let proxy = environment.upstreamProxy
                // cutReply is one-shot: re-arm it as soon as it fired.
                let cutting = Task {
                    while !Task.isCancelled {
                        if await proxy.mode == .pass { await proxy.setMode(.cutReply(afterBytes: 120)) }
                        try? await Task.sleep(for: .milliseconds(5))  // polls for the cut to have fired
                    }
                }
                return {
                    cutting.cancel()
                    await cutting.value
                    await proxy.setMode(.pass)
                    return []
                }
            }
            try await Self.run("upstream replies cut mid-body", fault)
        }
    }
}
