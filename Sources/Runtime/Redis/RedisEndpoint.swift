/// Where a Redis server is and how to log in to it, parsed from a `redis://` URL.
public struct RedisEndpoint: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// The ACL user; nil logs in as the default user.
    public var username: String?
    /// Sent with AUTH when set.
    public var password: String?
    /// The database SELECTed after connecting.
    public var database: Int

    public static let defaultPort = 6379

    public init(
        host: String, port: Int = RedisEndpoint.defaultPort, username: String? = nil, password: String? = nil,
        database: Int = 0
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    ///
    /// The port defaults to 6379 and the database to 0. User and password may be
    /// percent-encoded; the password may also hold `@`, `/` and `:` unencoded, as everything up
    /// to the last `@` is the user information. IPv6 hosts go in brackets: `redis://[::1]:6379`.
    /// Error messages never contain the password.
    public init(url: String) throws(RedisEndpointError) {
        let scheme = "redis://"
        guard url.lowercased().hasPrefix(scheme) else {
            if url.lowercased().hasPrefix("rediss://") {
                throw RedisEndpointError("TLS (rediss://) is not supported; expected a redis:// URL")
            }
            throw RedisEndpointError(
                "expected a URL starting with redis://, as in redis://[user:password@]host:port/db")
        }
        var rest = Substring(url.dropFirst(scheme.count))

        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            (username, password) = try Self.parseUserInfo(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }

        let authority: Substring
        let path: Substring
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
            path = ""
        }
        let (host, port) = try Self.parseHostAndPort(authority)
        let database = try Self.parseDatabase(path)
        self.init(host: host, port: port, username: username, password: password, database: database)
    }

    private static func parseUserInfo(_ userInfo: Substring) throws(RedisEndpointError) -> (String?, String?) {
        let rawUser: Substring
        let rawPassword: Substring?
        if let colon = userInfo.firstIndex(of: ":") {
            rawUser = userInfo[..<colon]
            rawPassword = userInfo[userInfo.index(after: colon)...]
        } else {
            rawUser = userInfo
            rawPassword = nil
        }
        guard let user = URLDecoding.percentDecode(rawUser, plusAsSpace: false) else {
            throw RedisEndpointError("the user name is not valid percent-encoded UTF-8")
        }
        guard let password = rawPassword.map({ URLDecoding.percentDecode($0, plusAsSpace: false) }) ?? "" else {
            throw RedisEndpointError("the password is not valid percent-encoded UTF-8")
        }
        if !user.isEmpty && password.isEmpty {
            throw RedisEndpointError(
                "the user name '\(user)' has no password; expected redis://user:password@host:port/db")
        }
        return (user.isEmpty ? nil : user, password.isEmpty ? nil : password)
    }

    private static func parseHostAndPort(_ authority: Substring) throws(RedisEndpointError) -> (String, Int) {
        let host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw RedisEndpointError("the IPv6 address has no closing ']'; expected redis://[::1]:6379")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let afterHost = authority[authority.index(after: close)...]
            if !afterHost.isEmpty {
                guard afterHost.hasPrefix(":") else {
                    throw RedisEndpointError("expected ':port' after the IPv6 address, found '\(afterHost)'")
                }
                portText = afterHost.dropFirst()
            }
        } else {
            let colons = authority.filter { $0 == ":" }.count
            if colons > 1 {
                throw RedisEndpointError("an IPv6 address must be in brackets, as in redis://[::1]:6379")
            }
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
        }
        guard !host.isEmpty else {
            throw RedisEndpointError("the host is missing; expected redis://host:port/db")
        }
        if let invalid = host.first(where: { $0.isWhitespace || "?#%".contains($0) }) {
            throw RedisEndpointError("the host '\(host)' contains '\(invalid)'; expected a host name or IP address")
        }
        guard let portText else { return (String(host), defaultPort) }
        guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portText), (1...65535).contains(port)
        else {
            throw RedisEndpointError("the port '\(portText)' is not a number from 1 to 65535")
        }
        return (String(host), port)
    }

    private static func parseDatabase(_ path: Substring) throws(RedisEndpointError) -> Int {
        if path.isEmpty { return 0 }
        guard path.allSatisfy({ $0.isASCII && $0.isNumber }), let database = Int(path) else {
            throw RedisEndpointError(
                "the database '\(path)' is not a number of 0 or more; expected redis://host:port/db")
        }
        return database
    }
}

extension RedisEndpoint {
    /// The endpoint as a URL with the password replaced by `***`, safe for logs.
    public var redactedDescription: String {
        var text = "redis://"
        if username != nil || password != nil {
            text += username.map(Self.percentEncodedUser) ?? ""
            text += password == nil ? "@" : ":***@"
        }
        text += host.contains(":") ? "[\(host)]" : host
        text += ":\(port)/\(database)"
        return text
    }

    private static func percentEncodedUser(_ user: String) -> String {
        var encoded = ""
        for byte in user.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                encoded += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return encoded
    }
}

extension RedisEndpoint: CustomStringConvertible {
    /// Same as ``redactedDescription``: a password never reaches a log by accident.
    public var description: String { redactedDescription }
}

/// Why a Redis URL could not be parsed. The message says what was expected and never contains
/// the password.
public struct RedisEndpointError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { "invalid Redis URL: \(message)" }
}
