import Foundation

/// How much chaos this run asks for, from the `CHAOS` environment variable: unset (or `0`)
/// skips the scenario suites so `make test` stays fast; `fast` runs them with short faults
/// (CI); anything else (`1`, `full`) runs them at the lengths the issue asks for (`make chaos`).
enum ChaosMode: String, Sendable {
    case off, fast, full

    static let current: ChaosMode = {
        switch ProcessInfo.processInfo.environment["CHAOS"]?.lowercased() {
        case nil, "", "0", "off", "false": .off
        case "fast": .fast
        default: .full
        }
    }()

    static var enabled: Bool { current != .off }

    /// `full` in a full run, `fast` otherwise.
    static func pick<T>(fast: T, full: T) -> T {
        current == .full ? full : fast
    }
}
