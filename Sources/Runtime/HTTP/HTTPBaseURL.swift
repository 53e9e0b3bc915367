/// The parts of an ``HTTPClient`` base URL: `http://host[:port][/prefix]`.
///
/// Only plain `http` is supported (the client talks to services on loopback or a private
/// network). The host should be numeric: evhttp resolves names with a blocking call on the loop.
struct HTTPBaseURL: Sendable, Hashable {
    /// The host to connect to, without IPv6 brackets.
    var host: String
    var port: UInt16
    /// The path every request path is appended to; empty or starting with `/`, never ending
    /// with `/`.
    var pathPrefix: String
    /// The `Host` header value.
    var hostHeader: String

    init?(_ text: String) {
        let scheme = "http://"
        guard text.count > scheme.count, text.prefix(scheme.count).lowercased() == scheme else { return nil }
        let rest = text.dropFirst(scheme.count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var prefix = String(rest[slash...])
        while prefix.hasSuffix("/") { prefix.removeLast() }
        guard !authority.isEmpty, !authority.contains("@"), !prefix.contains("?"), !prefix.contains("#"),
            !prefix.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F })
        else { return nil }

        let hostPart: Substring
        let portPart: Substring?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let afterBracket = authority[authority.index(after: close)...]
            if afterBracket.isEmpty {
                portPart = nil
            } else {
                guard afterBracket.first == ":" else { return nil }
                portPart = afterBracket.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
            portPart = nil
        }
        guard !hostPart.isEmpty else { return nil }
        if let portPart {
            guard let port = UInt16(portPart), port > 0 else { return nil }
            self.port = port
        } else {
            self.port = 80
        }
        self.host = String(hostPart)
        self.pathPrefix = prefix
        self.hostHeader = String(authority)
    }
}
