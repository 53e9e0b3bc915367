import FaultInjection
import Foundation
import TestSupport
import Testing

extension ChaosSuite {
    /// The resolver stops answering while Redis and upstream are named by host: established
    /// connections carry on, and every connection the service must make again (both proxies
    /// reset their connections at the start) waits on a name nobody answers, bounded by the
    /// service's own timeouts, while the loop keeps serving.
    @Suite("DNS faults", .timeLimit(.minutes(5)))
    struct DNSFaults {
        @Test func dnsStopsAnswering() async throws {
            let fault = Fault(target: .redis, duration: ChaosMode.pick(fast: .seconds(4), full: .seconds(10))) {
                environment in
                let nameserver = try #require(environment.nameserver)
                nameserver.setSilent(true)
                // Every connection must be made again, and looked up again.
                await environment.redisProxy.setMode(.drop)
                await environment.upstreamProxy.setMode(.drop)
                try await Task.sleep(for: .milliseconds(200))
                await environment.redisProxy.setMode(.pass)
                await environment.upstreamProxy.setMode(.pass)
                return {
                    nameserver.setSilent(false)
                    return []
                }
            }
            var options = ScenarioOptions()
            options.settings.namedHosts = true
            let record = try await ChaosScenario.run(
                "DNS stops answering (Redis and upstream named by host)", fault: fault, options: options)
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }
    }
}
