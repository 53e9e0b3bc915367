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
    /// The bad-input flood's counts; nil for fault scenarios.
    var badInput: BadInputCounts?
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
    /// The scenario needs something this build does not have; it did not run.
    var skipped = false
    var failures: [String] = []
    var notes: [String] = []

    var requests: Int { hot.requests + cold.requests + (badInput?.requests ?? 0) }

    enum CodingKeys: String, CodingKey {
        case scenario, mode, requests, hot, cold, batches, failures, notes
        case badInput = "bad_input"
        case faultSeconds = "fault_seconds"
        case healthProbes = "health_probes", healthFailed = "health_failed"
        case healthMaxMilliseconds = "health_max_ms", readMaxMilliseconds = "read_max_ms"
        case recoverySeconds = "recovery_s", recoveryBoundSeconds = "recovery_bound_s"
        case writesConvergedSeconds = "writes_converged_s"
        case manualRefreshesAcknowledged = "manual_refreshes_acked", manualRefreshesLost = "manual_refreshes_lost"
        case rssBeforeKilobytes = "rss_before_kb", rssAfterKilobytes = "rss_after_kb"
        case processAlive = "process_alive"
        case skipped, passed
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(scenario, forKey: .scenario)
        try container.encode(mode, forKey: .mode)
        try container.encode(requests, forKey: .requests)
        try container.encode(hot, forKey: .hot)
        try container.encode(cold, forKey: .cold)
        try container.encodeIfPresent(badInput, forKey: .badInput)
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
        try container.encode(skipped, forKey: .skipped)
        try container.encode(failures.isEmpty && !skipped, forKey: .passed)
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

/// What the bad-input flood got back.
struct BadInputCounts: Encodable, Sendable {
    var requests = 0
    var success = 0
    var clientErrors = 0
    var serverErrors = 0
    /// Closed without an answer: an acceptable refusal.
    var closed = 0
    /// The server's own 501 to a method it does not implement, CONNECT (not counted in 5xx).
    var notImplemented = 0
    /// Neither answered nor closed within the timeout: a hang.
    var silent = 0
    /// Anything else: a 1xx or 3xx, bytes that are not HTTP, a refused connect.
    var other = 0
    /// Outcome class counts by request category.
    var byCategory: [String: [String: Int]] = [:]
    /// Requests whose outcome broke their expectation.
    var violations = 0
    /// Slowloris connections (one header byte at a time), and the longest the server kept one.
    var slowlorisConnections = 0
    var slowlorisMaxOpenSeconds: Double?
    var slowlorisStillOpen = 0

    mutating func add(_ outcome: String, category: String) {
        requests += 1
        switch outcome {
        case "2xx": success += 1
        case "4xx": clientErrors += 1
        case "5xx": serverErrors += 1
        case "closed": closed += 1
        case "501": notImplemented += 1
        case "silent": silent += 1
        default: other += 1
        }
        byCategory[category, default: [:]][outcome, default: 0] += 1
    }

    mutating func merge(_ other: BadInputCounts) {
        requests += other.requests
        success += other.success
        clientErrors += other.clientErrors
        serverErrors += other.serverErrors
        closed += other.closed
        notImplemented += other.notImplemented
        silent += other.silent
        self.other += other.other
        violations += other.violations
        for (category, outcomes) in other.byCategory {
            for (outcome, count) in outcomes { byCategory[category, default: [:]][outcome, default: 0] += count }
        }
    }

    enum CodingKeys: String, CodingKey {
        case requests, closed, silent, other, violations
        case notImplemented = "501_unknown_method"
        case success = "2xx", clientErrors = "4xx", serverErrors = "5xx"
        case byCategory = "by_category"
        case slowlorisConnections = "slowloris_connections", slowlorisMaxOpenSeconds = "slowloris_max_open_s"
        case slowlorisStillOpen = "slowloris_still_open"
    }
}
