import Foundation

/// `postgres://user[:password]@host[:port]/database[?sslmode=disable|require]`, the
/// CHAT_POSTGRES_URL format.
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// `sslmode=require`; anything else (default `disable`) connects without TLS.
    public var requireTLS: Bool

    public init(
        host: String, port: Int = 5432, username: String, password: String?, database: String, requireTLS: Bool = false
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.requireTLS = requireTLS
    }

    /// Parses the URL; the error says what is wrong.
    public init(parsing text: String) throws(PostgresURLError) {
        guard let components = URLComponents(string: text),
            components.scheme == "postgres" || components.scheme == "postgresql"
        else { throw PostgresURLError("expected postgres://user:password@host:port/database") }
        guard let host = components.host, !host.isEmpty else { throw PostgresURLError("the host is missing") }
        guard let user = components.user, !user.isEmpty else { throw PostgresURLError("the user is missing") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw PostgresURLError("the database name is missing") }
        let port = components.port ?? 5432
        guard (1...65_535).contains(port) else { throw PostgresURLError("the port is out of range") }
        var requireTLS = false
        for item in components.queryItems ?? [] {
            switch (item.name, item.value ?? "") {
            case ("sslmode", "disable"): requireTLS = false
            case ("sslmode", "require"): requireTLS = true
            default:
                throw PostgresURLError(
                    "unsupported parameter \(item.name)=\(item.value ?? "") (only sslmode=disable|require)")
            }
        }
        self.init(
            host: host, port: port, username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 }, database: database,
            requireTLS: requireTLS)
    }

    /// The URL with the password as `***`, for logs.
    public var redactedDescription: String {
        "postgres://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)\(requireTLS ? "?sslmode=require" : "")"
    }

    public var description: String { redactedDescription }
}

/// A CHAT_POSTGRES_URL that does not parse.
public struct PostgresURLError: Error, Sendable, Hashable {
    public var message: String
    init(_ message: String) { self.message = message }
}
