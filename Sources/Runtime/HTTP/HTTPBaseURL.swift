/// The parts of an ``HTTPClient`` base URL: `http[s]://host[:port][/prefix]`.
///
/// The host may be a name (looked up through the loop's ``DNSResolver`` before every new
/// connection), an IPv4 address or an IPv6 address in brackets.
struct HTTPBaseURL: Sendable, Hashable {
    /// `https`: TLS, with the server's certificate and name verified.
    var isTLS: Bool
    /// The host to connect to, without IPv6 brackets.
    var host: String
    var port: UInt16
    /// The path every request path is appended to; empty or starting with `/`, never ending
    /// with `/`.
    var pathPrefix: String
    /// The `Host` header value.
    var hostHeader: String

    init?(_ text: String) {
        let lowered = text.prefix(8).lowercased()
        let scheme: String
        if lowered.hasPrefix("https://") {
            scheme = "https://"
        } else if lowered.hasPrefix("http://") {
            scheme = "http://"
        } else {
            return nil
        }
        guard text.count > scheme.count else { return nil }
        isTLS = scheme == "https://"
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
        guard !hostPart.isEmpty, !hostPart.contains(where: { $0.isWhitespace || "/?#%".contains($0) }) else {
            return nil
        }
        if let portPart {
            guard let port = UInt16(portPart), port > 0 else { return nil }
            self.port = port
        } else {
            self.port = isTLS ? 443 : 80
        }
        self.host = String(hostPart)
        self.pathPrefix = prefix
        self.hostHeader = String(authority)
    }
}
