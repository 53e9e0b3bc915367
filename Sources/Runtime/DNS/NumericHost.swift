import Glibc

/// Whether a host is already an address, which needs no lookup.
enum NumericHost {
    /// True for an IPv4 dotted quad or an IPv6 address (without brackets).
    static func isNumeric(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
