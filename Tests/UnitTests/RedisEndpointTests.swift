import Testing

@testable import ChatRuntime

@Suite("RedisEndpoint")
struct RedisEndpointTests {
    struct Valid: Sendable, CustomTestStringConvertible {
        let url: String
        let expected: RedisEndpoint
        var testDescription: String { url }
    }

    static let validURLs: [Valid] = [
        Valid(url: "redis://127.0.0.1:6379/0", expected: RedisEndpoint(host: "127.0.0.1")),
        Valid(url: "redis://localhost", expected: RedisEndpoint(host: "localhost")),
        Valid(url: "redis://localhost/", expected: RedisEndpoint(host: "localhost")),
        Valid(url: "REDIS://cache.internal:7000", expected: RedisEndpoint(host: "cache.internal", port: 7000)),
        Valid(url: "redis://host:6380/15", expected: RedisEndpoint(host: "host", port: 6380, database: 15)),
        Valid(
            url: "redis://:s3cret@host:6379/2", expected: RedisEndpoint(host: "host", password: "s3cret", database: 2)),
        Valid(url: "redis://alice:pw@host", expected: RedisEndpoint(host: "host", username: "alice", password: "pw")),
        Valid(
            url: "redis://al%69ce:p%40ss%3Aw%2Fd@host",
            expected: RedisEndpoint(host: "host", username: "alice", password: "p@ss:w/d")),
        Valid(
            url: "redis://:p@ss:w/rd@host:1/3",
            expected: RedisEndpoint(host: "host", port: 1, password: "p@ss:w/rd", database: 3)),
        Valid(url: "redis://:@host", expected: RedisEndpoint(host: "host")),
        Valid(url: "redis://[::1]:6390/1", expected: RedisEndpoint(host: "::1", port: 6390, database: 1)),
        Valid(url: "redis://[::1]", expected: RedisEndpoint(host: "::1")),
        Valid(
            url: "redis://:%C3%A9t%C3%A9@[fe80::1]:65535",
            expected: RedisEndpoint(host: "fe80::1", port: 65535, password: "été")),
    ]

    @Test(arguments: validURLs)
    func parsesValidURLs(_ valid: Valid) throws {
        #expect(try RedisEndpoint(url: valid.url) == valid.expected)
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        let url: String
        /// A fragment the message must contain: it says what was expected.
        let mentions: String
        var testDescription: String { url }
    }

    static let invalidURLs: [Invalid] = [
        Invalid(url: "", mentions: "redis://"),
        Invalid(url: "http://host:6379", mentions: "starting with redis://"),
        Invalid(url: "rediss://host:6379", mentions: "TLS"),
        Invalid(url: "redis://", mentions: "host is missing"),
        Invalid(url: "redis://:6379/0", mentions: "host is missing"),
        Invalid(url: "redis://host:port", mentions: "port 'port'"),
        Invalid(url: "redis://host:0", mentions: "1 to 65535"),
        Invalid(url: "redis://host:65536", mentions: "1 to 65535"),
        Invalid(url: "redis://host:+80", mentions: "1 to 65535"),
        Invalid(url: "redis://host:", mentions: "1 to 65535"),
        Invalid(url: "redis://host/db", mentions: "database 'db'"),
        Invalid(url: "redis://host/-1", mentions: "0 or more"),
        Invalid(url: "redis://host/1/2", mentions: "database '1/2'"),
        Invalid(url: "redis://host/0?timeout=1", mentions: "database '0?timeout=1'"),
        Invalid(url: "redis://::1:6379", mentions: "brackets"),
        Invalid(url: "redis://[::1:6379", mentions: "closing ']'"),
        Invalid(url: "redis://[::1]6379", mentions: "':port'"),
        Invalid(url: "redis://alice@host", mentions: "has no password"),
        Invalid(url: "redis://:bad%zzpw@host", mentions: "password is not valid percent-encoded"),
        Invalid(url: "redis://:bad%FFpw@host", mentions: "password is not valid percent-encoded"),
        Invalid(url: "redis://ho st:1", mentions: "contains ' '"),
    ]

    @Test(arguments: invalidURLs)
    func rejectsInvalidURLsSayingWhatWasExpected(_ invalid: Invalid) {
        #expect {
            try RedisEndpoint(url: invalid.url)
        } throws: { error in
            guard let error = error as? RedisEndpointError else { return false }
            return error.message.contains(invalid.mentions) && error.description.hasPrefix("invalid Redis URL")
        }
    }

    @Test func errorMessagesNeverContainThePassword() {
        for url in [
            "redis://:hunter2@host:99999", "redis://:hunter2@host/x", "redis://:hunter2@", "redis://u:hunter2@[::1",
        ] {
            do {
                _ = try RedisEndpoint(url: url)
                Issue.record("\(url) parsed")
            } catch {
                #expect(!error.description.contains("hunter2"))
            }
        }
    }

    @Test func redactedDescriptionHidesThePassword() throws {
        #expect(
            try RedisEndpoint(url: "redis://alice:hunter2@host:6380/2").redactedDescription
                == "redis://alice:***@host:6380/2")
        #expect(try RedisEndpoint(url: "redis://:hunter2@host").redactedDescription == "redis://:***@host:6379/0")
        #expect(try RedisEndpoint(url: "redis://[::1]:7000/1").redactedDescription == "redis://[::1]:7000/1")
        #expect(
            RedisEndpoint(host: "h", username: "a:b", password: "x").redactedDescription == "redis://a%3Ab:***@h:6379/0"
        )
        let endpoint = try RedisEndpoint(url: "redis://:hunter2@host")
        #expect(!"\(endpoint)".contains("hunter2"))
    }

    @Test func redactedDescriptionWithoutPasswordParsesBack() throws {
        let endpoint = RedisEndpoint(host: "::1", port: 7001, database: 4)
        #expect(try RedisEndpoint(url: endpoint.redactedDescription) == endpoint)
    }
}
