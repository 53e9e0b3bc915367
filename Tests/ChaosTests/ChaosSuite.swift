import Testing

/// Every chaos scenario, one at a time: they share the machine's two cores with the service,
/// Redis and the load, and a scenario's figures must not be another's noise. Skipped unless
/// `CHAOS` is set (see ``ChaosMode``).
@Suite("Chaos", .serialized, .enabled(if: ChaosMode.enabled, "set CHAOS=fast or CHAOS=1 (make chaos-fast, make chaos)"))
struct ChaosSuite {}

extension ScenarioRecord {
    /// The failures as one message for `#expect`.
    var failureSummary: String {
        "\(scenario): " + failures.joined(separator: "; ")
    }
}
