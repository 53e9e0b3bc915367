import Actors
import ChatRuntime
import Foundation
import Logging
import Testing

@testable import ChatService

@Suite("ServiceConfiguration")
struct ServiceConfigurationTests {
    @Test func defaultsMatchTheDesign() throws {
        let configuration = try ServiceConfiguration(environment: [:])
        #expect(configuration.redis.endpoint.host == "127.0.0.1")
        #expect(configuration.redis.endpoint.port == 6379)
        #expect(configuration.redis.maxRetries == 5)
        #expect(configuration.redis.retryDelay == .seconds(1))
        #expect(configuration.redis.healthCheckInterval == .seconds(30))
        #expect(configuration.participants.cacheTTL == .seconds(3600))
        #expect(configuration.participants.staleThreshold == .seconds(3600))
        #expect(configuration.participants.updateInterval == .seconds(900))
        #expect(configuration.participants.fullUpdateHour == 3)
        #expect(configuration.participants.batchSize == 50)
        #expect(configuration.participants.maxAPITimeout == .seconds(30))
        #expect(configuration.participants.backgroundSyncEnabled)
        #expect(configuration.participants.lazyUpdateEnabled)
        #expect(!configuration.participants.integrationDisabled)
        #expect(configuration.http.port == 8082)
        #expect(configuration.http.host == "0.0.0.0")
        #expect(configuration.adminToken == nil)
        #expect(configuration.jwtSecret == nil)
        #expect(configuration.logLevel == .info)
        #expect(configuration.logFormat == .text)
    }

    @Test func valuesAreRead() throws {
        let configuration = try ServiceConfiguration(environment: [
            "REDIS_URL": "redis://app:s3cret@127.0.0.1:6380/2",
            "REDIS_RETRY_DELAY": "500ms",
            "PARTICIPANTS_UPDATE_INTERVAL": "90",
            "PARTICIPANTS_FULL_UPDATE_HOUR": "23",
            "PARTICIPANTS_ENABLE_LAZY_UPDATE": "false",
            "PARTICIPANTS_TIMEZONE": "Europe/Berlin",
            "HTTP_PORT": "0",
            "LOG_FORMAT": "json",
        ])
        #expect(configuration.redis.endpoint.port == 6380)
        #expect(configuration.redis.endpoint.database == 2)
        #expect(configuration.redis.endpoint.username == "app")
        #expect(configuration.redis.endpoint.password == "s3cret")
        #expect(configuration.redis.retryDelay == .milliseconds(500))
        #expect(configuration.participants.updateInterval == .seconds(90))
        #expect(configuration.participants.fullUpdateHour == 23)
        #expect(!configuration.participants.lazyUpdateEnabled)
        #expect(configuration.participants.timeZone.identifier == "Europe/Berlin")
        #expect(configuration.logFormat == .json)
    }

    /// A table of bad values: each names its variable, echoes the value, says what was expected.
    static let badValues: [(variable: String, value: String)] = [
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("REDIS_URL", "redis://127.0.0.1:notaport/0"),
        ("REDIS_URL", "redis://127.0.0.1:6379/x"),
        ("REDIS_MAX_RETRIES", "-1"),
        ("REDIS_MAX_RETRIES", "five"),
        ("REDIS_RETRY_DELAY", "1 s"),
        ("REDIS_RETRY_DELAY", "-5s"),
        ("REDIS_RETRY_DELAY", "0"),
        ("REDIS_HEALTH_CHECK_INTERVAL", "1w"),
        ("REDIS_COMMAND_TIMEOUT", "abc"),
        ("REDIS_SENTINELS", "127.0.0.1"),
        ("REDIS_SENTINELS", "10.0.0.1:26379,,10.0.0.2:26379"),
        ("REDIS_SENTINELS", "10.0.0.1:99999"),
        ("REDIS_SENTINELS", "::1:26379"),
        ("REDIS_SENTINEL_MASTER", "my master"),
        ("REDIS_CLUSTER_NODES", "10.0.0.1"),
        ("REDIS_CLUSTER_NODES", "10.0.0.1:6379,,10.0.0.2:6379"),
        ("REDIS_CLUSTER_REFRESH_INTERVAL", "10ms"),
        ("PARTICIPANTS_CACHE_TTL", "0"),
        ("PARTICIPANTS_STALE_THRESHOLD", "1.5h"),
        ("PARTICIPANTS_UPDATE_INTERVAL", "soon"),
        ("PARTICIPANTS_FULL_UPDATE_HOUR", "24"),
        ("PARTICIPANTS_FULL_UPDATE_HOUR", "3am"),
        ("PARTICIPANTS_TIMEZONE", "Mars/Olympus"),
        ("PARTICIPANTS_BATCH_SIZE", "0"),
        ("PARTICIPANTS_BATCH_SIZE", "100000"),
        ("PARTICIPANTS_MAX_BATCHES_IN_FLIGHT", "0"),
        ("PARTICIPANTS_MAX_BATCHES_IN_FLIGHT", "257"),
        ("PARTICIPANTS_BATCH_CONCURRENCY", "auto"),
        ("PARTICIPANTS_BATCH_CONCURRENCY", "64"),
        ("PARTICIPANTS_MAX_API_TIMEOUT", "99999999999999999999s"),
        ("PARTICIPANTS_ENABLE_BACKGROUND_SYNC", "maybe"),
        ("PARTICIPANTS_ENABLE_LAZY_UPDATE", "2"),
        ("PARTICIPANTS_INTEGRATION_DISABLED", "nope"),
        ("PARTICIPANTS_L1_SIZE", "-3"),
        ("PARTICIPANTS_LEADER_LOCK_TTL", "500ms"),
        ("PARTICIPANTS_LEADER_LOCK_TTL", "2h"),
        ("PARTICIPANTS_LEADER_LOCK_TTL", "forever"),
        ("PARTICIPANTS_API_URL", "ftp://example"),
        ("PARTICIPANTS_API_URL", "not a url"),
        ("HTTP_PORT", "65536"),
        ("HTTP_PORT", "http"),
        ("GRPC_ENABLED", "sometimes"),
        ("GRPC_HOST", "localhost"),
        ("GRPC_HOST", "300.1.2.3"),
        ("GRPC_PORT", "65536"),
        ("GRPC_PORT", "-1"),
        ("GRPC_PORT", "grpc"),
        ("SHUTDOWN_TIMEOUT", "0"),
        ("LOG_LEVEL", "loud"),
        ("LOG_FORMAT", "xml"),
    ]

    @Test("bad values are rejected with the variable named", arguments: badValues)
    func badValue(variable: String, value: String) {
        #expect {
            _ = try ServiceConfiguration(environment: [variable: value])
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.variable == variable && error.description.contains(variable)
                && error.description.contains("expected") && !error.expected.isEmpty
        }
    }

    @Test func batchesInFlightAdaptUpToACeilingOf64ByDefault() throws {
        let defaults = try ServiceConfiguration(environment: [:])
        #expect(defaults.participants.maxBatchesInFlight == 64)
        #expect(defaults.participants.batchConcurrency == .adaptive)
        let summary = Dictionary(uniqueKeysWithValues: defaults.redactedSummary.map { ($0.name, $0.value) })
        #expect(summary["PARTICIPANTS_MAX_BATCHES_IN_FLIGHT"] == "64")
        #expect(summary["PARTICIPANTS_BATCH_CONCURRENCY"] == "adaptive")

        let fixed = try ServiceConfiguration(environment: [
            "PARTICIPANTS_BATCH_CONCURRENCY": "Fixed", "PARTICIPANTS_MAX_BATCHES_IN_FLIGHT": "4",
        ])
        #expect(fixed.participants.batchConcurrency == .fixed)
        #expect(fixed.participants.maxBatchesInFlight == 4)
        #expect(fixed.redactedSummary.contains { $0.name == "PARTICIPANTS_BATCH_CONCURRENCY" && $0.value == "fixed" })
    }

    @Test func aBadBatchConcurrencyStopsStartUpWithExit78NamingTheVariable() {
        #expect {
            _ = try ServiceConfiguration(environment: ["PARTICIPANTS_BATCH_CONCURRENCY": "gradient"])
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.variable == "PARTICIPANTS_BATCH_CONCURRENCY"
                && error.description
                    == #"invalid PARTICIPANTS_BATCH_CONCURRENCY="gradient": expected one of adaptive, fixed"#
        }
        #expect(ConfigurationError.exitCode == 78)
    }

    @Test func grpcListenerDefaultsAndOverrides() throws {
        let defaults = try ServiceConfiguration(environment: [:])
        #expect(defaults.grpc.enabled)
        #expect(defaults.grpc.host == "0.0.0.0")
        #expect(defaults.grpc.port == 9092)
        let custom = try ServiceConfiguration(environment: [
            "GRPC_ENABLED": "false", "GRPC_HOST": "::1", "GRPC_PORT": "0",
        ])
        #expect(!custom.grpc.enabled)
        #expect(custom.grpc.host == "::1")
        #expect(custom.grpc.port == 0)
    }

    @Test func sentinelsAreReadInOrder() throws {
        let none = try ServiceConfiguration(environment: [:])
        #expect(none.redis.sentinels.isEmpty)
        #expect(none.redis.sentinelMaster == "mymaster")
        #expect(none.redis.sentinel == nil)

        let configuration = try ServiceConfiguration(environment: [
            "REDIS_URL": "redis://:pw@ignored.example:6379/3",
            "REDIS_SENTINELS": "10.0.0.1:26379, sentinel-b:26380,[::1]:26381",
            "REDIS_SENTINEL_MASTER": "chat-cache",
        ])
        let sentinel = try #require(configuration.redis.sentinel)
        #expect(
            sentinel.sentinels == [
                RedisServerAddress(host: "10.0.0.1", port: 26379), RedisServerAddress(host: "sentinel-b", port: 26380),
                RedisServerAddress(host: "::1", port: 26381),
            ])
        #expect(sentinel.masterName == "chat-cache")
        let summary = Dictionary(uniqueKeysWithValues: configuration.redactedSummary.map { ($0.name, $0.value) })
        #expect(summary["REDIS_SENTINELS"] == "10.0.0.1:26379,sentinel-b:26380,[::1]:26381")
        #expect(summary["REDIS_SENTINEL_MASTER"] == "chat-cache")
    }

    @Test func clusterNodesAreReadAndChecked() throws {
        let configuration = try ServiceConfiguration(environment: [
            "REDIS_URL": "redis://app:pw@ignored.example:6379",
            "REDIS_CLUSTER_NODES": "10.0.0.1:7000, node-b:7001,[::1]:7002",
        ])
        #expect(
            configuration.redis.clusterNodes == [
                RedisServerAddress(host: "10.0.0.1", port: 7000), RedisServerAddress(host: "node-b", port: 7001),
                RedisServerAddress(host: "::1", port: 7002),
            ])
        #expect(configuration.redis.clusterRefreshInterval == .seconds(30))
        let summary = Dictionary(uniqueKeysWithValues: configuration.redactedSummary.map { ($0.name, $0.value) })
        #expect(summary["REDIS_CLUSTER_NODES"] == "10.0.0.1:7000,node-b:7001,[::1]:7002")

        // A cluster and sentinels at once, or a database other than 0, stop start-up.
        let both = #expect(throws: ConfigurationError.self) {
            try ServiceConfiguration(environment: [
                "REDIS_CLUSTER_NODES": "10.0.0.1:7000", "REDIS_SENTINELS": "10.0.0.1:26379",
            ])
        }
        #expect(both?.variable == "REDIS_CLUSTER_NODES")
        #expect(both?.description.contains("REDIS_SENTINELS") == true)
        let database = #expect(throws: ConfigurationError.self) {
            try ServiceConfiguration(environment: [
                "REDIS_URL": "redis://127.0.0.1:6379/2", "REDIS_CLUSTER_NODES": "10.0.0.1:7000",
            ])
        }
        #expect(database?.variable == "REDIS_URL")
        #expect(database?.description.contains("database 0") == true)
    }

    @Test func passwordsNeverReachTheSummaryOrErrors() throws {
        let configuration = try ServiceConfiguration(environment: [
            "REDIS_URL": "redis://app:hunter2@127.0.0.1:6379/0",
            "ADMIN_TOKEN": "admintoken123",
            "JWT_SECRET": "jwtsecret456",
            "PARTICIPANTS_API_TOKEN": "apitoken789",
        ])
        let summary = configuration.redactedSummary.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
        for secret in ["hunter2", "admintoken123", "jwtsecret456", "apitoken789"] {
            #expect(!summary.contains(secret))
        }
        #expect(summary.contains("REDIS_URL="))
        #expect(throws: ConfigurationError.self) {
            _ = try ServiceConfiguration(environment: ["REDIS_URL": "redis://app:hunter2@127.0.0.1:xx/0"])
        }
        do {
            _ = try ServiceConfiguration(environment: ["REDIS_URL": "redis://app:hunter2@127.0.0.1:xx/0"])
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test func summaryCoversEveryVariable() throws {
        let configuration = try ServiceConfiguration(environment: [:])
        #expect(configuration.redactedSummary.map(\.name) == EnvironmentVariable.all.map(\.name))
        #expect(!configuration.redactedSummary.contains { $0.value == "?" })
    }

    @Test func staleThresholdNotBelowTTLWarns() throws {
        let defaults = try ServiceConfiguration(environment: [:])
        #expect(defaults.warnings.contains { $0.contains("PARTICIPANTS_STALE_THRESHOLD") })
        let tuned = try ServiceConfiguration(environment: ["PARTICIPANTS_STALE_THRESHOLD": "15m"])
        #expect(!tuned.warnings.contains { $0.contains("PARTICIPANTS_STALE_THRESHOLD") })
    }

    @Test func leaderLockTTLIsReadAndWarnedAboutWhenTooShortForTheCommandTimeout() throws {
        let defaults = try ServiceConfiguration(environment: [:])
        #expect(defaults.participants.leaderLockTTL == .seconds(15))
        #expect(!defaults.warnings.contains { $0.contains("PARTICIPANTS_LEADER_LOCK_TTL") })
        #expect(defaults.redactedSummary.contains { $0.name == "PARTICIPANTS_LEADER_LOCK_TTL" && $0.value == "15s" })
        let short = try ServiceConfiguration(environment: ["PARTICIPANTS_LEADER_LOCK_TTL": "5s"])
        #expect(short.participants.leaderLockTTL == .seconds(5))
        #expect(
            short.warnings.contains {
                $0.contains("PARTICIPANTS_LEADER_LOCK_TTL") && $0.contains("REDIS_COMMAND_TIMEOUT")
            })
    }
}
