/// Where an ``EventLoop``'s ``DNSResolver`` finds its nameservers.
public struct ResolverSettings: Sendable, Hashable {
    /// A resolv.conf-format file: `nameserver` lines (`ip` or `ip:port`), `search`, `domain`
    /// and `options` (`timeout:`, `attempts:`, `ndots:`).
    public var resolvConfPath: String

    /// The host's own resolver configuration, `/etc/resolv.conf`.
    public static let system = ResolverSettings(resolvConfPath: "/etc/resolv.conf")

    public init(resolvConfPath: String) {
        self.resolvConfPath = resolvConfPath
    }
}
