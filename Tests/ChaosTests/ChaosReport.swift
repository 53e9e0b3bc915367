import Foundation
import TestSupport

/// The figures one scenario produced. Written as one JSON line to the file named by the
/// `CHAOS_REPORT` environment variable (when set); `scripts/chaos_report.py` renders the lines
/// as docs/RELIABILITY.md. Nothing here is typed by hand: every number comes from the run.
struct ScenarioRecord: Encodable, Sendable {
    struct Batches: Encodable, Sendable {
        var jobState: String?
        var planned = 0
        var done = 0
        var deferred = 0
        var failed = 0
        var skipped = 0
        var chatsRefreshed = 0
        /// Chats the run counted as refreshed that are not in Redis afterwards.
        var chatsLost = 0

        /// Batches whose fate is unknown: planned, but neither done, failed nor skipped.
        var unaccounted: Int { planned - done - failed - skipped }

        enum CodingKeys: String, CodingKey {
            case jobState = "job_state", planned, done, deferred, failed, skipped
            case chatsRefreshed = "chats_refreshed", chatsLost = "chats_lost", unaccounted
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(jobState, forKey: .jobState)
            try container.encode(planned, forKey: .planned)
            try container.encode(done, forKey: .done)
            try container.encode(deferred, forKey: .deferred)
            try container.encode(failed, forKey: .failed)
            try container.encode(skipped, forKey: .skipped)
            try container.encode(chatsRefreshed, forKey: .chatsRefreshed)
            try container.encode(chatsLost, forKey: .chatsLost)
            try container.encode(unaccounted, forKey: .unaccounted)
        }
    }

    var scenario: String
    var mode = ChaosMode.current.rawValue
    var faultSeconds: Double = 0
    var hot = ReadCounts()
    var cold = ReadCounts()
    var healthProbes = 0
    var healthFailed = 0
    var healthMaxMilliseconds: Double = 0
    var readMaxMilliseconds: Double = 0
    /// From the end of the fault to `/health` ok (Redis faults) or to the first read upstream
    /// answered (upstream faults).
    var recoverySeconds: Double?
    var recoveryBoundSeconds: Double?
    /// From the end of the fault until every acknowledged write is in Redis.
    var writesConvergedSeconds: Double?
    var manualRefreshesAcknowledged = 0
    var manualRefreshesLost = 0
    var batches = Batches()
    var rssBeforeKilobytes: Int?
    var rssAfterKilobytes: Int?
    var processAlive = true
    var failures: [String] = []
    var notes: [String] = []

    var requests: Int { hot.requests + cold.requests }

    enum CodingKeys: String, CodingKey {
        case scenario, mode, requests, hot, cold, batches, failures, notes
        case faultSeconds = "fault_seconds"
        case healthProbes = "health_probes", healthFailed = "health_failed"
        case healthMaxMilliseconds = "health_max_ms", readMaxMilliseconds = "read_max_ms"
        case recoverySeconds = "recovery_s", recoveryBoundSeconds = "recovery_bound_s"
        case writesConvergedSeconds = "writes_converged_s"
        case manualRefreshesAcknowledged = "manual_refreshes_acked", manualRefreshesLost = "manual_refreshes_lost"
        case rssBeforeKilobytes = "rss_before_kb", rssAfterKilobytes = "rss_after_kb"
        case processAlive = "process_alive"
        case passed
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(scenario, forKey: .scenario)
        try container.encode(mode, forKey: .mode)
        try container.encode(requests, forKey: .requests)
        try container.encode(hot, forKey: .hot)
        try container.encode(cold, forKey: .cold)
        try container.encode(batches, forKey: .batches)
        try container.encode(failures, forKey: .failures)
        try container.encode(notes, forKey: .notes)
        try container.encode(faultSeconds, forKey: .faultSeconds)
        try container.encode(healthProbes, forKey: .healthProbes)
        try container.encode(healthFailed, forKey: .healthFailed)
        try container.encode(healthMaxMilliseconds, forKey: .healthMaxMilliseconds)
        try container.encode(readMaxMilliseconds, forKey: .readMaxMilliseconds)
        try container.encode(recoverySeconds, forKey: .recoverySeconds)
        try container.encode(recoveryBoundSeconds, forKey: .recoveryBoundSeconds)
        try container.encode(writesConvergedSeconds, forKey: .writesConvergedSeconds)
        try container.encode(manualRefreshesAcknowledged, forKey: .manualRefreshesAcknowledged)
        try container.encode(manualRefreshesLost, forKey: .manualRefreshesLost)
        try container.encode(rssBeforeKilobytes, forKey: .rssBeforeKilobytes)
        try container.encode(rssAfterKilobytes, forKey: .rssAfterKilobytes)
        try container.encode(processAlive, forKey: .processAlive)
        try container.encode(failures.isEmpty, forKey: .passed)
    }

    /// Records a failed check.
    mutating func check(_ condition: Bool, _ message: String) {
        if !condition { failures.append(message) }
    }

    /// Copies the load figures in.
    mutating func take(_ figures: LoadFigures) {
        hot = figures.hot()
        cold = figures.cold()
        healthProbes = figures.probes.count
        healthFailed = figures.failedProbes.count
        healthMaxMilliseconds = figures.maxProbeLatency.milliseconds
        readMaxMilliseconds = figures.maxReadLatency.milliseconds
    }

    /// Appends this record to `$CHAOS_REPORT`, if set.
    func append() {
        guard let path = ProcessInfo.processInfo.environment["CHAOS_REPORT"], !path.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard var line = try? encoder.encode(self) else { return }
        line.append(0x0A)
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: line)
    }
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return (Double(seconds) + Double(attoseconds) / 1e18) * 1000
    }
}
