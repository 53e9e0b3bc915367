import Actors
import ChatRuntime
import ChatService
import FaultInjection
import Foundation
import Logging
import StubUpstream
import TestSupport

/// What one chaos scenario runs against: a real redis-server behind a ``FaultProxy``, the stub
/// upstream (in-process) behind another, and the real `chat-service` binary as a subprocess
/// pointed at both proxies.
///
/// ```
///  load generator ──HTTP──► chat-service ──► redisProxy ──► redis-server
///                           (subprocess) └─► upstreamProxy ──► StubUpstream
/// ```
final class ChaosEnvironment: Sendable {
    /// The knobs a scenario may change.
    struct Settings: Sendable {
        var chats = 400
        /// chat-1 … chat-N are read before the fault; the rest are cold.
        var hotChats = 40
        /// AOF with fsync per write, so what Redis acknowledged survives a SIGKILL: any entry
        /// missing afterwards is lost by the service, not by Redis.
        var redisConfig = ["appendonly yes", "appendfsync always"]
        /// Overrides of the service's environment.
        var environment: [String: String] = [:]
        var instanceID = "chaos-1"
        /// Name Redis and upstream by host (`redis.chaos.test`, `upstream.chaos.test`), looked
        /// up through ``ChaosEnvironment/nameserver`` (DNS_RESOLV_CONF), instead of by address.
        var namedHosts = false
        /// Run against a six-node Redis Cluster (REDIS_CLUSTER_NODES) instead of one Redis:
        /// ``ChaosEnvironment/redisCluster`` is set, and ``ChaosEnvironment/redis`` and its proxy
        /// are its first node, which the service reaches directly, not through the proxy.
        var cluster = false
    }

    static let jwtSecret = "chaos-jwt-secret"
    static let adminToken = "chaos-admin-token"
    static let userToken = mintUserToken(subject: "chaos", secret: jwtSecret, validFor: .seconds(6 * 3600))
    static let logger = Logger(label: "test.chaos")

    /// The Redis policy the service runs with; recovery is judged against it.
    static let redisPolicy: [String: String] = [
        "REDIS_MAX_RETRIES": "3",
        "REDIS_RETRY_DELAY": "100ms",
        "REDIS_MAX_RETRY_DELAY": "500ms",
        "REDIS_HEALTH_CHECK_INTERVAL": "500ms",
        "REDIS_CONNECT_TIMEOUT": "500ms",
        "REDIS_COMMAND_TIMEOUT": "500ms",
    ]

    let settings: Settings
    let loop: EventLoop
    let redis: RedisServer
    let redisProxy: FaultProxy
    /// The cluster in cluster mode (``Settings/cluster``).
    let redisCluster: LocalRedisCluster?
    let stub: StubUpstream
    let upstreamProxy: FaultProxy
    let service: ServiceProcess
    /// The nameserver answering for the hosts when ``Settings/namedHosts`` is on.
    let nameserver: FakeNameserver?
    let httpPort: Int
    let configuration: ServiceConfiguration
    /// The environment the service was started with.
    let serviceEnvironment: [String: String]

    var base: String { "http://127.0.0.1:\(httpPort)" }
    var hotChats: [String] { (1...settings.hotChats).map { "chat-\($0)" } }
    var coldChats: [String] { ((settings.hotChats + 1)...settings.chats).map { "chat-\($0)" } }
    var allChats: [String] { (1...settings.chats).map { "chat-\($0)" } }

    /// Starts everything and waits until `/health` says `ok`.
    static func start(_ settings: Settings = Settings()) async throws -> ChaosEnvironment {
        let loop = EventLoop(name: "chaos")
        let redisCluster = settings.cluster ? try await LocalRedisCluster.start(logger: logger) : nil
        let redis: RedisServer
        if let redisCluster {
            redis = redisCluster.nodes[0]
        } else {
            redis = try await RedisServer.start(extraConfig: settings.redisConfig)
        }
        let redisProxy = try await FaultProxy.start(loop: loop, targetPort: redis.port)
        let stub = StubUpstream(
            settings: .init(chats: settings.chats, participantsPerChat: 5, maxHang: .seconds(60)), loop: loop,
            logger: logger)
        let stubPort = try await stub.start(port: 0)
        let upstreamProxy = try await FaultProxy.start(loop: loop, targetPort: stubPort)
        let httpPort = freeLoopbackPort()
        // With named hosts, evdns' own per-query timeout (5 s) is above every bound of the
        // service, so only the service's bounds end a lookup nobody answers.
        let nameserver =
            settings.namedHosts
            ? try FakeNameserver(
                addresses: ["redis.chaos.test": "127.0.0.1", "upstream.chaos.test": "127.0.0.1"], queryTimeoutSeconds: 5
            )
            : nil
        let redisHost = nameserver == nil ? "127.0.0.1" : "redis.chaos.test"
        let upstreamHost = nameserver == nil ? "127.0.0.1" : "upstream.chaos.test"
        var environment = redisPolicy.merging([
            "REDIS_URL": "redis://\(redisHost):\(redisProxy.port)/0",
            "PARTICIPANTS_API_URL": "http://\(upstreamHost):\(upstreamProxy.port)",
            "PARTICIPANTS_MAX_API_TIMEOUT": "2s",
            "PARTICIPANTS_BATCH_SIZE": "25",
            "HTTP_HOST": "127.0.0.1", "GRPC_HOST": "127.0.0.1", "GRPC_PORT": "0",
            "HTTP_PORT": "\(httpPort)",
            "JWT_SECRET": jwtSecret,
            "ADMIN_TOKEN": adminToken,
            "INSTANCE_ID": settings.instanceID,
            "SHUTDOWN_TIMEOUT": "6s",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
        ]) { $1 }
        if let nameserver { environment["DNS_RESOLV_CONF"] = nameserver.resolvConf }
        if let redisCluster {
            // Cluster mode: REDIS_URL's address is ignored.
            environment["REDIS_URL"] = "redis://127.0.0.1:1/0"
            environment["REDIS_CLUSTER_NODES"] = redisCluster.seedList
            environment["REDIS_CLUSTER_REFRESH_INTERVAL"] = "1s"
        }
        environment.merge(settings.environment) { $1 }
        let configuration = try ServiceConfiguration(environment: environment)
        let service = try ServiceProcess.serve(environment: environment)
        let environmentObject = ChaosEnvironment(
            settings: settings, loop: loop, redis: redis, redisProxy: redisProxy, redisCluster: redisCluster,
            stub: stub,
            upstreamProxy: upstreamProxy, service: service, nameserver: nameserver, httpPort: httpPort,
            configuration: configuration, serviceEnvironment: environment)
        let healthy = await eventually(timeout: .seconds(30)) { await environmentObject.healthStatus() == "ok" }
        guard healthy else {
            let output = service.output()
            await environmentObject.shutdown()
            throw ChaosError("chat-service did not report ok within 30 s; log tail:\n\(output.suffix(3000))")
        }
        return environmentObject
    }

    private init(
        settings: Settings, loop: EventLoop, redis: RedisServer, redisProxy: FaultProxy,
        redisCluster: LocalRedisCluster?, stub: StubUpstream,
        upstreamProxy: FaultProxy, service: ServiceProcess, nameserver: FakeNameserver?, httpPort: Int,
        configuration: ServiceConfiguration, serviceEnvironment: [String: String]
    ) {
        self.nameserver = nameserver
        self.serviceEnvironment = serviceEnvironment
        self.settings = settings
        self.loop = loop
        self.redis = redis
        self.redisProxy = redisProxy
        self.redisCluster = redisCluster
        self.stub = stub
        self.upstreamProxy = upstreamProxy
        self.service = service
        self.httpPort = httpPort
        self.configuration = configuration
    }

    /// Stops the service (SIGTERM, then SIGKILL), the proxies, the stub and Redis.
    func shutdown() async {
        if service.process.isRunning {
            service.signal(SIGTERM)
            if await service.waitForExit(timeout: .seconds(15)) == nil {
                service.signal(SIGKILL)
                _ = await service.waitForExit(timeout: .seconds(5))
            }
        }
        await redisProxy.close()
        await upstreamProxy.close()
        await stub.shutdown()
        redis.cleanup()
        redisCluster?.cleanup()
        nameserver?.stop()
        loop.stop()
    }

    /// Starts one more instance against the same proxies, named `instanceID`, and waits until
    /// its `/health` says `ok`; returns it and its HTTP port. The caller stops it.
    func startInstance(instanceID: String) async throws -> (service: ServiceProcess, port: Int) {
        let port = freeLoopbackPort()
        var environment = serviceEnvironment
        environment["HTTP_PORT"] = "\(port)"
        environment["INSTANCE_ID"] = instanceID
        let service = try ServiceProcess.serve(environment: environment)
        let healthy = await eventually(timeout: .seconds(30)) {
            guard let reply = await httpGet("http://127.0.0.1:\(port)/health", timeout: .seconds(3)),
                reply.status == 200
            else { return false }
            return Self.object(reply.body)["status"] as? String == "ok"
        }
        guard healthy else {
            service.signal(SIGKILL)
            throw ChaosError("instance \(instanceID) did not report ok within 30 s: \(service.output().suffix(2000))")
        }
        return (service, port)
    }

    // MARK: The service over HTTP

    /// `/health`'s `status`, nil when it did not answer 200.
    func healthStatus() async -> String? {
        guard let reply = await httpGet(base + "/health", timeout: .seconds(3)), reply.status == 200 else { return nil }
        return Self.object(reply.body)["status"] as? String
    }

    func read(_ chat: String) async -> (status: Int, json: [String: Any]) {
        let headers = ["Authorization": "Bearer \(Self.userToken)"]
        guard
            let reply = await httpGet(base + "/v1/chats/\(chat)/participants", headers: headers, timeout: .seconds(10))
        else {
            return (0, [:])
        }
        return (reply.status, Self.object(reply.body))
    }

    /// An admin request to the first instance, or to the one listening on `port`.
    func admin(_ method: String, _ path: String, port: Int? = nil) async -> (status: Int, json: [String: Any]) {
        let headers = ["Authorization": "Bearer \(Self.adminToken)"]
        let url = "http://127.0.0.1:\(port ?? httpPort)" + path
        guard let reply = await httpRequest(method, url, headers: headers, timeout: .seconds(15)) else {
            return (0, [:])
        }
        return (reply.status, Self.object(reply.body))
    }

    /// Reads every hot chat once, so it is in L1 and in Redis before the fault.
    func warmHotChats() async throws {
        for chat in hotChats {
            let reply = await read(chat)
            guard reply.status == 200 else { throw ChaosError("warming \(chat) answered \(reply.status)") }
        }
        let inRedis = await entries(hotChats).count
        guard inRedis == hotChats.count else {
            throw ChaosError("only \(inRedis) of \(hotChats.count) hot chats reached Redis")
        }
    }

    /// The job's JSON once it has ended; nil if it is still queued or running after `timeout`.
    func waitForJob(_ id: String, timeout: Duration, port: Int? = nil) async -> [String: Any]? {
        var last: [String: Any] = [:]
        let done = await eventually(timeout: timeout) {
            last = await self.admin("GET", "/internal/participants/refresh/\(id)", port: port).json
            // `queued` is not an end: a run requested while Redis is away waits to be handed over.
            return (last["state"] as? String).map { ["completed", "failed", "cancelled"].contains($0) } ?? false
        }
        return done ? last : nil
    }

    // MARK: Redis, read directly (not through the proxy)

    /// The entries Redis holds for `chats`; chats without a readable entry are left out.
    func entries(_ chats: [String]) async -> [String: ParticipantsEntry] {
        var result: [String: ParticipantsEntry] = [:]
        if redisCluster != nil {
            for (chat, value) in zip(chats, await clusterValues(chats.map { "participants:v1:{\($0)}" })) {
                if let value, let entry = try? EntryCodec.decodeFromRedis(Array(value.utf8)) { result[chat] = entry }
            }
            return result
        }
        for start in stride(from: 0, to: chats.count, by: 100) {
            let slice = Array(chats[start..<min(start + 100, chats.count)])
            guard let output = try? await redis.cli(arguments: ["MGET"] + slice.map { "participants:v1:{\($0)}" })
            else { continue }
            let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
            for (chat, line) in zip(slice, lines) {
                if let entry = try? EntryCodec.decodeFromRedis(Array(line.utf8)) { result[chat] = entry }
            }
        }
        return result
    }

    /// Chats whose entry in Redis has at least `version` (one script call, so it can be polled);
    /// 0 when Redis does not answer.
    func chatsInRedis(atLeast version: Int64) async -> Int {
        if redisCluster != nil {
            return await entries(allChats).values.filter { $0.version >= version }.count
        }
        let keys = allChats.map { "participants:v1:{\($0)}" }
        let output = try? await redis.cli(
            arguments: ["EVAL", Self.countScript, "\(keys.count)"] + keys + ["\(version)"])
        return output.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
    }

    private static let countScript = """
        local n = 0
        for i = 1, #KEYS do
          local value = redis.call('GET', KEYS[i])
          if value then
            local ok, entry = pcall(cjson.decode, value)
            if ok and type(entry) == 'table' and tonumber(entry.version) and tonumber(entry.version) >= tonumber(ARGV[1]) then
              n = n + 1
            end
          end
        end
        return n
        """

    /// In cluster mode, each key's value through `redis-cli -c` (one call a key: a cluster
    /// refuses multi-key reads across slots); nil for a missing key or a node that does not answer.
    private func clusterValues(_ keys: [String]) async -> [String?] {
        var reader = redis
        for node in redisCluster?.nodes ?? [] where (try? await node.cli("PING")) == "PONG" {
            reader = node
            break
        }
        var values: [String?] = []
        for key in keys {
            let value = try? await reader.cli("-c", "GET", key)
            values.append(value.flatMap { $0.isEmpty ? nil : $0 })
        }
        return values
    }

    /// In cluster mode, the primary that holds `key` now (the others answer `MOVED` for it).
    func clusterPrimary(holding key: String) async -> RedisServer? {
        guard let redisCluster else { return nil }
        for port in await redisCluster.primaryPorts() {
            guard let node = redisCluster.nodes.first(where: { $0.port == port }) else { continue }
            if let reply = try? await node.cli("EXISTS", key), !reply.contains("MOVED") { return node }
        }
        return nil
    }

    /// Bumps every chat's version in the stub, so what is written afterwards can be told from
    /// what was there before.
    func bumpAllChats() async {
        for chat in allChats { _ = await stub.bump(chat: chat) }
    }

    // MARK: The process

    /// VmRSS of the service in kB, from /proc.
    func residentKilobytes() -> Int? {
        guard
            let status = try? String(
                contentsOfFile: "/proc/\(service.process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    /// The JSON log lines of the service whose `message` is `message`.
    func logLines(message: String) -> [[String: Any]] {
        service.output().split(separator: "\n").compactMap { line in
            let object = Self.object(String(line))
            return object["message"] as? String == message ? object : nil
        }
    }

    /// How long after Redis is back the policy allows before the supervisor must be ready:
    /// the longest backoff step (with its 20 % jitter) or the probe period, whichever is
    /// longer, plus one connect timeout.
    var redisRecoveryBound: Duration {
        let redis = configuration.redis
        return max(redis.maxRetryDelay * 1.2, redis.healthCheckInterval) + redis.connectTimeout
    }

    static func object(_ body: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }
}

/// A chaos fixture that could not be set up, or a check that could not be made.
struct ChaosError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
