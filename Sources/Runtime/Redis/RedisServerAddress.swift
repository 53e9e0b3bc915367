/// A Redis server's `host:port`, as in a list of sentinels.
public struct RedisServerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; IPv6 addresses go in brackets (`[::1]:26379`). The port is required:
    /// sentinels listen on 26379 by convention, not on Redis' 6379, so a silent default would
    /// hide a mistake.
    public init(parsing text: String) throws(RedisEndpointError) {
        let trimmed = text.trimmingWhitespace()
        let host: Substring
        let portText: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else {
                throw RedisEndpointError("'\(trimmed)': the IPv6 address has no closing ']'; expected [::1]:26379")
            }
            host = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            let rest = trimmed[trimmed.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw RedisEndpointError("'\(trimmed)': expected ':port' after the IPv6 address")
            }
            portText = rest.dropFirst()
        } else {
            let parts = trimmed.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw RedisEndpointError("'\(trimmed)': expected host:port (IPv6 in brackets)")
            }
            host = parts[0]
            portText = parts[1]
        }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || "/?#@,".contains($0) }) else {
            throw RedisEndpointError("'\(trimmed)': the host is missing or not a host name or IP address")
        }
        guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portText), (1...65535).contains(port)
        else {
            throw RedisEndpointError("'\(trimmed)': the port '\(portText)' is not a number from 1 to 65535")
        }
        self.init(host: String(host), port: port)
    }

    /// Parses a comma-separated list such as `10.0.0.1:26379, 10.0.0.2:26379`; an empty or blank
    /// text is an empty list, an empty item an error.
    public static func parseList(_ text: String) throws(RedisEndpointError) -> [RedisServerAddress] {
        guard !text.trimmingWhitespace().isEmpty else { return [] }
        var addresses: [RedisServerAddress] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.trimmingWhitespace().isEmpty else {
                throw RedisEndpointError("an empty item in the list; expected host:port,host:port")
            }
            addresses.append(try RedisServerAddress(parsing: String(item)))
        }
        return addresses
    }

    /// `host:port`, with IPv6 hosts in brackets.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension StringProtocol {
    fileprivate func trimmingWhitespace() -> Substring {
        let text = self[...]
        guard let first = text.firstIndex(where: { !$0.isWhitespace }),
            let last = text.lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return Substring(text[first...last])
    }
}
