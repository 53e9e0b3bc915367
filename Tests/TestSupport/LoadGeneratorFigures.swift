/// One read the ``LoadGenerator`` made.
public struct LoadSample: Sendable, Hashable {
    /// Where the reply came from, as the service's `source` field says.
    public enum Source: UInt8, Sendable, Hashable, CaseIterable {
        case none, memory, cache, upstream
    }

    public var completedAt: ContinuousClock.Instant
    public var latency: Duration
    /// A hot chat (read before the fault) or a cold one.
    public var hot: Bool
    /// The HTTP status; 0 when nothing came back (timeout, reset, refused).
    public var status: Int
    public var source: Source
}

/// One `/health` probe.
public struct HealthProbe: Sendable, Hashable {
    public var startedAt: ContinuousClock.Instant
    public var latency: Duration
    /// The HTTP status; 0 when nothing came back within the probe's timeout.
    public var status: Int
    /// The body's `status`: `ok` or `degraded` (nil when the probe failed).
    public var healthStatus: String?
}

/// Counts of reads by outcome class.
public struct ReadCounts: Sendable, Hashable, Codable {
    public var requests = 0
    public var success = 0
    public var clientErrors = 0
    public var serverErrors = 0
    /// No answer at all: timeout, reset, refused.
    public var failures = 0
    public var fromMemory = 0
    public var fromCache = 0
    public var fromUpstream = 0

    public init() {}

    mutating func add(_ sample: LoadSample) {
        requests += 1
        switch sample.status {
        case 200..<300: success += 1
        case 400..<500: clientErrors += 1
        case 500..<600: serverErrors += 1
        default: failures += 1
        }
        switch sample.source {
        case .memory: fromMemory += 1
        case .cache: fromCache += 1
        case .upstream: fromUpstream += 1
        case .none: break
        }
    }

    enum CodingKeys: String, CodingKey {
        case requests
        case success = "2xx"
        case clientErrors = "4xx"
        case serverErrors = "5xx"
        case failures = "no_answer"
        case fromMemory = "memory"
        case fromCache = "cache"
        case fromUpstream = "upstream"
    }
}

/// Everything a ``LoadGenerator`` saw: every read and every health probe, with the figures a
/// chaos scenario reports computed from them.
public struct LoadFigures: Sendable {
    public var samples: [LoadSample]
    public var probes: [HealthProbe]

    public init(samples: [LoadSample], probes: [HealthProbe]) {
        self.samples = samples
        self.probes = probes
    }

    /// Reads of hot chats, by class; only those completed in `window` when given.
    public func hot(in window: ClosedRange<ContinuousClock.Instant>? = nil) -> ReadCounts {
        counts(hot: true, in: window)
    }

    /// Reads of cold chats, by class.
    public func cold(in window: ClosedRange<ContinuousClock.Instant>? = nil) -> ReadCounts {
        counts(hot: false, in: window)
    }

    /// Probes that got no 200.
    public var failedProbes: [HealthProbe] { probes.filter { $0.status != 200 } }

    /// The slowest probe.
    public var maxProbeLatency: Duration { probes.map(\.latency).max() ?? .zero }

    /// The slowest read that was answered.
    public var maxReadLatency: Duration { samples.filter { $0.status != 0 }.map(\.latency).max() ?? .zero }

    /// From `instant` to the end of the first probe started at or after it that found
    /// `/health` saying `ok`; nil when none did.
    public func healthRecovery(after instant: ContinuousClock.Instant) -> Duration? {
        guard let probe = probes.first(where: { $0.startedAt >= instant && $0.healthStatus == "ok" }) else {
            return nil
        }
        return probe.startedAt + probe.latency - instant
    }

    /// From `instant` to the first cold read completed after it that upstream answered (200
    /// with `source: upstream`); nil when none did.
    public func upstreamRecovery(after instant: ContinuousClock.Instant) -> Duration? {
        // Workers append in about, not exactly, completion order.
        let first = samples.lazy
            .filter { $0.completedAt >= instant && $0.status == 200 && $0.source == .upstream }
            .map(\.completedAt).min()
        return first.map { $0 - instant }
    }

    private func counts(hot: Bool, in window: ClosedRange<ContinuousClock.Instant>?) -> ReadCounts {
        var counts = ReadCounts()
        for sample in samples where sample.hot == hot {
            if let window, !window.contains(sample.completedAt) { continue }
            counts.add(sample)
        }
        return counts
    }
}
