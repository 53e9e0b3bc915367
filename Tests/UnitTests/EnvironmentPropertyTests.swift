import Actors
import Testing

@testable import ChatService

/// Hostile values for every environment variable: each is either accepted or refused with a
/// ConfigurationError naming that variable (exit 78 in the binary), never a trap, and a refused
/// REDIS_URL never echoes its password.
@Suite("Environment properties")
struct EnvironmentPropertyTests {
    /// Values that break parsers: empty-ish, signs, overflow, other number syntaxes, Unicode
    /// digits, control characters, very long text.
    static let hostile: [String] = [
        " ", "\t", "-", "+", "-0", "0", "-1", "1", "00", "0x10", "1e3", "1.5", "NaN", "inf", "-inf",
        "9223372036854775807", "9223372036854775808", "-9223372036854775809", "99999999999999999999999999",
        "１２", "٣", "12\u{0}", "\u{0}", "\u{7F}", "1\n2", "true\n", " true", "TRUE", "ｔｒｕｅ",
        "1s1s", "1ms", "0ms", "-1ms", "1µs", "1ns", "1y", "1w", "10000d", "1h-1m", "s", "ms", ".5s", "5.s",
        "redis://", "redis://:", "redis://@", "redis://[::1", "redis://127.0.0.1:6379/0/1", "redis://127.0.0.1:-1/0",
        "redis://127.0.0.1:6379/-1", "redis://user:pa:ss@127.0.0.1:6379/0", "http://", "http://:80", "http://[::1",
        "Europe/Nowhere", "../../etc/passwd", "UTC\u{0}", String(repeating: "9", count: 10_000),
        String(repeating: "a", count: 100_000), "😀", "\u{202E}1s",
    ]

    @Test(arguments: EnvironmentVariable.all.map(\.name))
    func everyHostileValueIsAcceptedOrRefusedByName(variable: String) {
        var random = SeededRandom(seed: UInt64(truncatingIfNeeded: variable.hashValue & 0xFFFF) | 1)
        var values = Self.hostile
        for _ in 0..<200 {
            values.append(PropertyTesting.text(maxLength: 24, using: &random))
            values.append(
                String(
                    decoding: (0..<Int.random(in: 1...16, using: &random)).map { _ in
                        PropertyTesting.interestingByte(using: &random)
                    }, as: UTF8.self))
        }
        for value in values {
            do {
                _ = try ServiceConfiguration(environment: [variable: value])
            } catch {
                #expect(
                    error.variable == variable,
                    "\(variable)=\(value.debugDescription) was refused naming \(error.variable)")
                #expect(error.description.contains(variable) && !error.expected.isEmpty)
            }
        }
        PropertyTesting.report(
            "environment: hostile values accepted or refused naming the variable", cases: values.count)
    }

    /// Bad values the hostile pass above found accepted, and others next to them.
    @Test(arguments: [
        ("PARTICIPANTS_API_URL", "http://:80"), ("PARTICIPANTS_API_URL", "http://"),
        ("PARTICIPANTS_API_URL", "http:///v1"),
        ("REDIS_URL", "redis://"), ("REDIS_URL", "redis://:6379/0"), ("HTTP_PORT", "-1"), ("REDIS_MAX_RETRIES", "1e3"),
        ("PARTICIPANTS_BATCH_SIZE", "0x10"), ("SHUTDOWN_TIMEOUT", "-1s"), ("HTTP_MAX_BODY_SIZE", "1.5"),
    ])
    func foundBadValuesAreRefused(variable: String, value: String) {
        #expect(throws: ConfigurationError.self, "\(variable)=\(value)") {
            _ = try ServiceConfiguration(environment: [variable: value])
        }
    }

    @Test func aRefusedRedisURLNeverEchoesItsPassword() {
        var random = SeededRandom(seed: 0x5EC)
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        for _ in 0..<PropertyTesting.iterations / 10 {
            let password = String((0..<16).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &random)] })
            let broken = [
                "redis://app:\(password)@127.0.0.1:notaport/0", "redis://app:\(password)@127.0.0.1:6379/x",
                "redis://:\(password)@:6379/0", "rediss://app:\(password)@127.0.0.1:6379/0",
                "redis://app:\(password)@127.0.0.1:6379/0/extra", "redis://app:\(password)@127.0.0.1:99999/0",
            ]
            for url in broken {
                do {
                    _ = try ServiceConfiguration(environment: ["REDIS_URL": url])
                } catch {
                    #expect(!"\(error)".contains(password), "\(error)")
                }
            }
        }
    }
}
