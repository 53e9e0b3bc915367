/// The supervisor's view of Redis (DESIGN §4). Anything but `ready` means the service is degraded.
public enum RedisState: Sendable, Hashable, CustomStringConvertible {
    /// The first connection attempt since start-up is in progress.
    case connecting
    /// Connected; commands are sent.
    case ready
    /// Lost or failed; `attempt` is the reconnect attempt being made or waited for (1...maxRetries).
    case reconnecting(attempt: Int)
    /// Every reconnect attempt failed; a probe runs every health-check interval.
    case unavailable
    /// Shut down; nothing more happens.
    case stopped

    /// The state's name without its attempt counter: for logs, metrics labels and `/health`.
    public var name: String {
        switch self {
        case .connecting: "connecting"
        case .ready: "ready"
        case .reconnecting: "reconnecting"
        case .unavailable: "unavailable"
        case .stopped: "stopped"
        }
    }

    public var description: String {
        if case .reconnecting(let attempt) = self { return "reconnecting(\(attempt))" }
        return name
    }

    /// Every state name, for metrics that export one gauge per state.
    public static let allNames = ["connecting", "ready", "reconnecting", "unavailable", "stopped"]
}
