/// Why a host name has no address.
public struct DNSResolutionError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// The resolver answered that the name has no address (NXDOMAIN, no A/AAAA record).
        case notFound
        /// The nameservers gave no usable answer: evdns' own retries (resolv.conf's `timeout`
        /// and `attempts`) ran out, or they failed or refused.
        case failed
        /// No answer within the lookup's time bound.
        case timeout
        /// The calling task was cancelled.
        case cancelled
    }

    public var code: Code
    public var host: String
    public var message: String

    public init(code: Code, host: String, message: String) {
        self.code = code
        self.host = host
        self.message = message
    }

    public var description: String { "cannot resolve \(host): \(message)" }
}
