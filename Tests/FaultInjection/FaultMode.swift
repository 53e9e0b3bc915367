/// What a ``FaultProxy`` does to the traffic it carries. Switched at run time with
/// ``FaultProxy/setMode(_:)``; the new mode applies at once to open connections and new ones.
public enum FaultMode: Sendable, Hashable, CustomStringConvertible {
    /// Forwards bytes both ways as they come.
    case pass
    /// Delays every chunk by this much, in each direction (a request-reply round trip takes
    /// twice as long). Order is kept.
    case latency(Duration)
    /// Resets every open connection (RST), and resets new ones right after accepting them: the
    /// peer sees its connection die at once, as when the server behind went away.
    case drop
    /// Accepts connections and reads what clients send, but never forwards anything in either
    /// direction and never closes: clients wait until their own timeouts fire.
    case blackhole
    /// Forwards this many bytes of the next server reply (on whichever connection it comes),
    /// then closes that connection; the mode then returns to ``pass``.
    case cutReply(afterBytes: Int)
    /// At most this many bytes per second in each direction of each connection (slow-drip).
    case bandwidth(bytesPerSecond: Int)

    public var description: String {
        switch self {
        case .pass: "pass"
        case .latency(let delay): "latency(\(delay))"
        case .drop: "drop"
        case .blackhole: "blackhole"
        case .cutReply(let bytes): "cutReply(\(bytes) bytes)"
        case .bandwidth(let rate): "bandwidth(\(rate) B/s)"
        }
    }
}

/// What a ``FaultProxy`` has carried and done so far.
public struct FaultProxyStatistics: Sendable, Hashable {
    /// Connections accepted, including those reset at once by ``FaultMode/drop``.
    public var accepted = 0
    /// Connections open right now.
    public var open = 0
    /// Bytes forwarded from clients to the target.
    public var bytesToTarget = 0
    /// Bytes forwarded from the target to clients.
    public var bytesToClients = 0
    /// Bytes read and thrown away by ``FaultMode/blackhole``.
    public var bytesBlackholed = 0
    /// Connections reset by ``FaultMode/drop``.
    public var resets = 0
    /// Replies cut by ``FaultMode/cutReply(afterBytes:)``.
    public var cuts = 0
    /// Connections to the target that could not be made (the target was down).
    public var targetConnectFailures = 0

    public init() {}
}
