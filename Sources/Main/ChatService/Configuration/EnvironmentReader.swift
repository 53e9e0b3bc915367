import Actors
import Foundation

/// A bad environment value: start-up stops with exit code 78 (EX_CONFIG) and this one line.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let variable: String
    public let value: String
    public let expected: String

    public var description: String {
        "invalid \(variable)=\"\(value)\": expected \(expected)"
    }

    /// EX_CONFIG from sysexits.h.
    public static let exitCode: Int32 = 78
}

/// Reads typed values from an environment dictionary, falling back to each variable's default
/// from ``EnvironmentVariable/all`` and naming the variable in every error.
struct EnvironmentReader {
    let environment: [String: String]

    /// The raw value, or the default; nil when neither exists. An empty value counts as unset.
    func raw(_ name: String) -> String? {
        if let value = environment[name], !value.isEmpty { return value }
        return EnvironmentVariable.named(name).defaultValue
    }

    func string(_ name: String) -> String? { raw(name) }

    func requiredString(_ name: String) throws(ConfigurationError) -> String {
        guard let value = raw(name) else {
            throw ConfigurationError(variable: name, value: "", expected: "a value")
        }
        return value
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try requiredString(name)
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(
                variable: name, value: text, expected: "an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    func duration(_ name: String, minimum: Duration = .zero, maximum: Duration = .seconds(366 * 86_400))
        throws(ConfigurationError) -> Duration
    {
        let text = try requiredString(name)
        guard let value = parseDuration(text), value >= minimum, value <= maximum else {
            throw ConfigurationError(
                variable: name, value: text,
                expected:
                    "a duration like 500ms, 30s, 15m, 1h, 1d or seconds, from \(formatDuration(minimum)) to \(formatDuration(maximum))"
            )
        }
        return value
    }

    func bool(_ name: String) throws(ConfigurationError) -> Bool {
        let text = try requiredString(name)
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError(variable: name, value: text, expected: "true or false")
        }
    }

    func oneOf(_ name: String, _ choices: [String]) throws(ConfigurationError) -> String {
        let text = try requiredString(name)
        guard choices.contains(text.lowercased()) else {
            throw ConfigurationError(variable: name, value: text, expected: "one of \(choices.joined(separator: ", "))")
        }
        return text.lowercased()
    }

    /// An IPv4 or IPv6 address literal (no host names: the gRPC listener binds it as given).
    func ipAddress(_ name: String) throws(ConfigurationError) -> String {
        let text = try requiredString(name)
        var ipv4 = in_addr()
        var ipv6 = in6_addr()
        guard inet_pton(AF_INET, text, &ipv4) == 1 || inet_pton(AF_INET6, text, &ipv6) == 1 else {
            throw ConfigurationError(
                variable: name, value: text, expected: "an IPv4 or IPv6 address such as 0.0.0.0, 127.0.0.1 or ::")
        }
        return text
    }

    /// An `http://` or `https://` URL with a host, without a trailing slash.
    func httpURL(_ name: String) throws(ConfigurationError) -> String {
        let text = try requiredString(name)
        // `http://:80` parses with an empty host: refused too (found by the environment property tests).
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else {
            throw ConfigurationError(
                variable: name, value: text, expected: "an http://host[:port][/path] or https://host[:port][/path] URL")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// An optional ``httpURL(_:)``: nil when unset.
    func optionalHTTPURL(_ name: String) throws(ConfigurationError) -> String? {
        raw(name) == nil ? nil : try httpURL(name)
    }

    /// The path of a file this process can read, or nil when unset.
    func readableFile(_ name: String) throws(ConfigurationError) -> String? {
        guard let path = raw(name) else { return nil }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ConfigurationError(variable: name, value: path, expected: "the path of a readable file")
        }
        return path
    }
}
