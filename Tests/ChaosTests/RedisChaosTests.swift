import Actors
import FaultInjection
import Foundation
import TestSupport
import Testing

extension ChaosSuite {
    /// Redis killed, frozen, flapping, black-holed, out of memory and restarted, each under read
    /// load with manual refreshes and a full run while it lasts.
    @Suite("Redis faults", .timeLimit(.minutes(5)))
    struct RedisFaults {
        @Test func redisKilledThenRestarted() async throws {
            let fault = Fault(target: .redis, duration: ChaosMode.pick(fast: .seconds(3), full: .seconds(5))) {
                environment in
                await environment.redis.kill()
                return {
                    try await environment.redis.restart()
                    return []
                }
            }
            let record = try await ChaosScenario.run("Redis SIGKILL, then restart", fault: fault)
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }

        /// Cluster mode: the primary that holds the coordination keys (leader lock, batch
        /// stream) and a third of the chats is SIGKILLed; the cluster promotes its replica, the
        /// service follows; the node is restarted at the end and rejoins as a replica.
        @Test func clusterPrimaryKilledThenRestarted() async throws {
            let record = try await Self.clusterScenario(
                "Redis Cluster: the {sync} primary SIGKILLed, replica promoted, node restarted",
                holding: CoordinationKeys.leader
            ) { victim in
                await victim.kill()
                return { try await victim.restart() }
            }
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }

        /// Cluster mode: the primary of the hot chat-1 is frozen (SIGSTOP): its commands time
        /// out, the cluster fails it over after the node timeout, the service follows; thawed at
        /// the end, the node finds itself demoted.
        @Test func clusterPrimaryFrozenThenThawed() async throws {
            let record = try await Self.clusterScenario(
                "Redis Cluster: a chat primary SIGSTOPped, replica promoted, node thawed",
                holding: ParticipantsKeys.entry(ChatID(validating: "chat-1")!)
            ) { victim in
                victim.freeze()
                return { victim.thaw() }
            }
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }

        /// A scenario against a six-node cluster whose fault hits the primary holding `key`.
        static func clusterScenario(
            _ name: String, holding key: String,
            fault inject: @escaping @Sendable (RedisServer) async throws -> @Sendable () async throws -> Void
        ) async throws -> ScenarioRecord {
            var options = ScenarioOptions()
            options.settings.cluster = true
            options.settings.chats = 200
            options.settings.redisConfig = []
            let fault = Fault(target: .redis, duration: ChaosMode.pick(fast: .seconds(6), full: .seconds(12))) {
                environment in
                guard let victim = await environment.clusterPrimary(holding: key) else {
                    throw ChaosError("no primary holds \(key)")
                }
                let end = try await inject(victim)
                return {
                    try await end()
                    return []
                }
            }
            return try await ChaosScenario.run(name, fault: fault, options: options)
        }

        @Test func redisFrozenThenThawed() async throws {
            let fault = Fault(target: .redis, duration: ChaosMode.pick(fast: .seconds(3), full: .seconds(10))) {
                environment in
                environment.redis.freeze()
                return {
                    environment.redis.thaw()
                    return []
                }
            }
            let record = try await ChaosScenario.run("Redis SIGSTOP, then SIGCONT", fault: fault)
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }

        @Test func redisFlappingEverySecond() async throws {
            let fault = Fault(target: .redis, duration: ChaosMode.pick(fast: .seconds(6), full: .seconds(30))) {
                environment in
                let proxy = environment.redisProxy
                let flapping = Task {
                    var down = true
                    while !Task.isCancelled {
                        await proxy.setMode(down ? .drop : .pass)
                        down.toggle()
                        // The fault: Redis flaps every second.
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
                return {
                    flapping.cancel()
                    await flapping.value
                    await proxy.setMode(.pass)
                    return []
                }
            }
            let record = try await ChaosScenario.run("Redis flapping down/up every second", fault: fault)
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }

        @Test func redisBlackholed() async throws {
            let fault = Fault(target: .redis, duration: ChaosMode.pick(fast: .seconds(3), full: .seconds(10))) {
                environment in
                await environment.redisProxy.setMode(.blackhole)
                return {
                    await environment.redisProxy.setMode(.pass)
                    return []
                }
            }
            let record = try await ChaosScenario.run("Redis black-holed (proxy)", fault: fault)
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }

        @Test func redisOutOfMemory() async throws {
            let fault = Fault(target: .redis, duration: ChaosMode.pick(fast: .seconds(3), full: .seconds(10))) {
                environment in
                // noeviction and a limit below what Redis already uses: every write is refused
                // with -OOM while reads go on.
                _ = try await environment.redis.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
                _ = try await environment.redis.cli("CONFIG", "SET", "maxmemory", "1")
                let refused: String
                do {
                    refused = try await environment.redis.cli("SET", "chaos:probe", "1")
                } catch {
                    refused = "\(error)" // redis-cli 7 exits 1 on an error reply
                }
                return {
                    _ = try await environment.redis.cli("CONFIG", "SET", "maxmemory", "0")
                    return refused.contains("OOM") ? [] : ["Redis did not refuse a write at maxmemory 1: \(refused)"]
                }
            }
            let record = try await ChaosScenario.run("Redis OOM (maxmemory, noeviction)", fault: fault)
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }

        @Test func redisRestartedWithAOFKeepsItsData() async throws {
            let fault = Fault(target: .redis, duration: ChaosMode.pick(fast: .seconds(2), full: .seconds(5))) {
                environment in
                let before = await environment.entries(environment.allChats).count
                await environment.redis.stop()
                return {
                    try await environment.redis.restart()
                    // Counted before the service writes anything back.
                    let after = await environment.entries(environment.allChats).count
                    return after >= before ? [] : ["Redis held \(before) entries before the restart and \(after) after"]
                }
            }
            var options = ScenarioOptions()
            options.settings.redisConfig = ["appendonly yes", "appendfsync everysec"]
            let record = try await ChaosScenario.run("Redis restart with AOF", fault: fault, options: options)
            #expect(record.failures.isEmpty, "\(record.failureSummary)")
        }
    }
}
