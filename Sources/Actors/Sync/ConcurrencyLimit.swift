/// How many batches may be in flight toward upstream at once, adapted to what upstream answers.
///
/// A fixed number of batches in flight caps throughput at `limit / latency`: 4 in flight against a
/// 50 ms upstream is 80 batches (4 000 chats) a second, however much more upstream could take.
/// Raising the number blindly overloads a slower or smaller upstream instead. So the limit is
/// discovered the way TCP discovers its congestion window, and the way Netflix's
/// concurrency-limits library limits requests (its AIMD and Gradient2 limits, themselves after
/// TCP Vegas):
///
/// - **Slow start.** From `initial`, the limit doubles each time a window of `limit` answers has
///   come back mostly without a sign of queueing, until the first congestion signal or
///   `maximum`. A full run is only about 2 000 batches, so growing by one per window from a low
///   start would never get near a high ceiling; doubling reaches 64 from 4 in 60 answers.
/// - **Additive increase.** After the first congestion signal, +1 per such window.
/// - **Multiplicative decrease.** Congestion multiplies the limit by `backoffRatio` (at least −1,
///   never below `minimum`), at most once per window: the `limit` samples after a decrease (the
///   calls that were in flight when it happened) neither decrease nor grow it, so a burst of
///   failures of calls that started together costs one decrease, not a collapse to the minimum
///   (TCP's fast recovery).
/// - **Congestion** is `.overloaded` (429, 5xx, a timeout, an open circuit), or latency: as in
///   TCP Vegas, the `baseline` is upstream's time without a queue, and an answer slower than
///   `latencyTolerance × baseline` means calls queue somewhere. One slow answer alone is noise
///   (a pause, a retransmit); two in a row are congestion, since a queue slows every call.
/// - **Queueing (Vegas's band).** An answer above `1 + (latencyTolerance − 1) / 2` times the
///   baseline (1.5× for the default 2) but not slow is elevated: a window of mostly elevated
///   answers ends slow start with a multiplicative decrease (slow start overshoots by up to 2×,
///   as HyStart notices by delay), and later costs −1. So the limit levels off where latency
///   starts to climb (about 1.5 × upstream's capacity when its latency grows with concurrency),
///   below the point where upstream pushes back, with throughput already at its plateau.
/// - **Baseline.** Answers are averaged in groups of 8 and the least group mean seen is the
///   baseline (a plain minimum would follow the one fast outlier of a noisy upstream, and then
///   every ordinary answer would look like a queue). Baselines below `latencyFloor` count as the
///   floor: against an instant upstream a few milliseconds of scheduling jitter are not a queue,
///   so the limit still reaches `maximum`. The baseline is re-measured every `baselineWindow`
///   samples, so it can rise if upstream gets slower for good: when most answers of that window
///   were elevated, our own queue may be the cause as well as upstream, so the limit is halved
///   for about one window (a probe, as BBR's ProbeRTT) and the mean latency at that lower
///   concurrency becomes the baseline; otherwise the window's least group mean does. Measuring
///   at low concurrency keeps the baseline from drifting up with our own queue, the weakness of
///   a plain decaying minimum (and of Gradient2's long-term average). A baseline that rose past
///   the tolerance means the earlier decreases were measured against a stale one: slow start
///   begins again.
/// - **Application-limited samples.** An answer to a call started while fewer than `limit / 2`
///   calls were in flight says nothing about whether more concurrency would work: it does not
///   count toward a window (it still feeds the baseline and may signal congestion).
///
/// `.fixed` mode always allows `maximum` and ignores samples.
///
/// A pure value: no clock is read and nothing is done; the caller records each finished call and
/// applies ``limit``.
public struct ConcurrencyLimit: Sendable, Hashable {
    /// PARTICIPANTS_BATCH_CONCURRENCY.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        case adaptive, fixed
    }

    public struct Settings: Sendable, Hashable {
        public var mode: Mode
        /// The limit never goes below this (at least 1).
        public var minimum: Int
        /// The ceiling (PARTICIPANTS_MAX_BATCHES_IN_FLIGHT); the limit in `.fixed` mode.
        public var maximum: Int
        /// Where slow start begins.
        public var initial: Int
        /// The factor of a multiplicative decrease, within 0.5...0.95.
        public var backoffRatio: Double
        /// An answer slower than this many times the baseline counts as queueing (more than 1).
        public var latencyTolerance: Double
        /// Baselines below this count as this: jitter of a few milliseconds is not a queue.
        public var latencyFloor: Duration
        /// Samples after which the baseline is re-measured (so it can rise).
        public var baselineWindow: Int

        /// - Parameter initial: nil starts at 8 (within `minimum...maximum`): against a 50 ms
        ///   upstream that is 3 doublings (150 ms) from 64, where 4 costs a fourth.
        public init(
            mode: Mode = .adaptive, minimum: Int = 1, maximum: Int = 64, initial: Int? = nil,
            backoffRatio: Double = 0.9, latencyTolerance: Double = 2.0,
            latencyFloor: Duration = .milliseconds(20), baselineWindow: Int = 500
        ) {
            self.mode = mode
            self.minimum = minimum
            self.maximum = maximum
            self.initial = initial ?? Swift.min(Swift.max(8, minimum), maximum)
            self.backoffRatio = backoffRatio
            self.latencyTolerance = latencyTolerance
            self.latencyFloor = latencyFloor
            self.baselineWindow = baselineWindow
        }

        func validate() {
            precondition(minimum >= 1, "the concurrency limit's minimum must be at least 1")
            precondition(
                minimum <= initial && initial <= maximum, "the concurrency limit needs minimum <= initial <= maximum")
            precondition((0.5...0.95).contains(backoffRatio), "backoffRatio must be within 0.5...0.95")
            precondition(latencyTolerance > 1, "latencyTolerance must be above 1")
            precondition(latencyFloor >= .zero, "latencyFloor must not be negative")
            precondition(baselineWindow >= 1, "baselineWindow must be at least 1")
        }
    }

    /// What one finished call says about upstream's capacity.
    public enum Sample: Sendable, Hashable {
        /// The call answered (any answer that is not overload), in `latency`.
        case answered(latency: Duration)
        /// Upstream signalled overload: 429, 5xx, a timeout, an open circuit.
        case overloaded
        /// Not a signal about upstream's capacity (cancelled, 4xx other than 429, malformed): ignored.
        case ignored
    }

    public let settings: Settings
    /// Calls allowed in flight: always within `minimum...maximum`; `.fixed`: always `maximum`.
    public private(set) var limit: Int
    /// True until the first congestion signal: the limit doubles per window.
    public private(set) var isInSlowStart = true
    /// Upstream's latency without a queue, as measured lately (nil before the first group).
    public private(set) var baseline: Duration?

    /// The current window: good and elevated answers counted toward a change of the limit.
    private var windowGood = 0
    private var windowElevated = 0
    /// Samples left before another decrease (or any growth) may happen.
    private var recoveryRemaining = 0
    /// Slow answers in a row.
    private var slowStreak = 0
    /// The group of consecutive answers being averaged for the baseline.
    private var groupSum: Duration = .zero
    private var groupCount = 0
    /// The current baseline epoch: samples, how many were elevated, the least group mean.
    private var epochSamples = 0
    private var epochElevated = 0
    private var epochMinimum: Duration?
    /// While probing: the limit to return to, samples left, the latencies at probe concurrency.
    private var probe: Probe?

    /// Answers averaged into one baseline measurement.
    static let groupSize = 8

    private struct Probe: Sendable, Hashable {
        var restore: Int
        var samplesLeft: Int
        var measured = 0
        var sum: Duration = .zero
    }

    public init(settings: Settings) {
        settings.validate()
        self.settings = settings
        limit = settings.mode == .fixed ? settings.maximum : settings.initial
    }

    /// Whether a baseline probe (a halved limit) is under way.
    public var isProbing: Bool { probe != nil }

    /// Records one finished call; `inFlight` is how many calls were in flight when it started (a
    /// sample taken while the limit was not used fully says little about more concurrency).
    /// Returns the new limit.
    @discardableResult
    public mutating func record(_ sample: Sample, inFlight: Int) -> Int {
        guard settings.mode == .adaptive else { return limit }
        switch sample {
        case .ignored:
            return limit
        case .overloaded:
            slowStreak = 0
            let recovering = countTowardRecovery()
            if let probe {
                // Overload while probing: the probe is moot; back off from where it started.
                limit = probe.restore
                self.probe = nil
                resetGroup()
            }
            decrease(recovering: recovering)
        case .answered(let latency):
            let recovering = countTowardRecovery()
            answered(Swift.max(latency, .zero), inFlight: inFlight, recovering: recovering)
        }
        checkInvariants()
        return limit
    }

    // MARK: Transitions

    private mutating func answered(_ latency: Duration, inFlight: Int, recovering: Bool) {
        if probe != nil {
            probing(latency, inFlight: inFlight)
            return
        }
        var slow = false
        var elevated = false
        if let baseline {
            let reference = Swift.max(baseline, settings.latencyFloor)
            slow = latency > reference * settings.latencyTolerance
            elevated = latency > reference * (1 + (settings.latencyTolerance - 1) / 2)
        }
        measureBaseline(latency, elevated: elevated)
        if probe != nil { return } // this sample started a probe

        slowStreak = slow ? slowStreak + 1 : 0
        if slowStreak >= 2 {
            decrease(recovering: recovering)
            return
        }
        // Application-limited samples and those of calls started before a decrease say nothing
        // about the current limit.
        guard inFlight >= limit / 2, !recovering else { return }
        if elevated { windowElevated += 1 } else { windowGood += 1 }
        guard windowGood + windowElevated >= limit else { return }
        let queueing = windowElevated * 2 > windowGood + windowElevated
        windowGood = 0
        windowElevated = 0
        if !queueing {
            limit = isInSlowStart ? Swift.min(settings.maximum, limit * 2) : Swift.min(settings.maximum, limit + 1)
        } else if isInSlowStart {
            decrease(recovering: false)
        } else {
            limit = Swift.max(settings.minimum, limit - 1)
        }
    }

    /// A congestion signal: ends slow start; a multiplicative decrease unless one happened
    /// within the window.
    private mutating func decrease(recovering: Bool) {
        isInSlowStart = false
        slowStreak = 0
        windowGood = 0
        windowElevated = 0
        guard !recovering else { return }
        let before = limit
        let scaled = Int((Double(limit) * settings.backoffRatio).rounded(.down))
        limit = Swift.max(settings.minimum, Swift.min(scaled, limit - 1))
        recoveryRemaining = before
    }

    /// Whether this sample is one of the `limit` after a decrease (counting it).
    private mutating func countTowardRecovery() -> Bool {
        guard recoveryRemaining > 0 else { return false }
        recoveryRemaining -= 1
        return true
    }

    // MARK: Baseline

    /// Averages answers in groups; the least group mean of the epoch is the baseline candidate,
    /// and any group mean below the baseline lowers it at once.
    private mutating func measureBaseline(_ latency: Duration, elevated: Bool) {
        groupSum += latency
        groupCount += 1
        if groupCount == Self.groupSize {
            let mean = groupSum / groupCount
            resetGroup()
            if baseline == nil || mean < baseline! { baseline = mean }
            if epochMinimum == nil || mean < epochMinimum! { epochMinimum = mean }
        }
        epochSamples += 1
        if elevated { epochElevated += 1 }
        guard epochSamples >= settings.baselineWindow else { return }
        if epochElevated * 2 > epochSamples && limit > settings.minimum {
            // Mostly elevated: our own queue or a slower upstream. Measure at half the concurrency.
            probe = Probe(restore: limit, samplesLeft: 3 * limit + 2 * Self.groupSize)
            limit = Swift.max(settings.minimum, limit / 2)
            windowGood = 0
            windowElevated = 0
            slowStreak = 0
            resetGroup()
        } else if let epochMinimum {
            remeasured(epochMinimum)
        }
        epochSamples = 0
        epochElevated = 0
        epochMinimum = nil
    }

    /// A sample while probing: only calls started at the probe's concurrency measure the
    /// baseline (their mean); the probe ends after `max(limit, 8)` of them, or after
    /// 3 × the old limit + 16 samples in all.
    private mutating func probing(_ latency: Duration, inFlight: Int) {
        guard var current = probe else { return }
        current.samplesLeft -= 1
        if inFlight <= limit {
            current.measured += 1
            current.sum += latency
        }
        guard current.measured >= Swift.max(limit, Self.groupSize) || current.samplesLeft <= 0 else {
            probe = current
            return
        }
        if current.measured > 0 { remeasured(current.sum / current.measured) }
        limit = current.restore
        probe = nil
        windowGood = 0
        windowElevated = 0
        slowStreak = 0
    }

    /// A baseline from a new measurement, which may be higher. One above the tolerance of the
    /// old means upstream got slower for good: the decreases that stale baseline caused were
    /// wrong, so the limit is found again from where it is by slow start.
    private mutating func remeasured(_ measured: Duration) {
        if let baseline, measured > Swift.max(baseline, settings.latencyFloor) * settings.latencyTolerance {
            isInSlowStart = true
        }
        baseline = measured
    }

    private mutating func resetGroup() {
        groupSum = .zero
        groupCount = 0
    }

    private func checkInvariants() {
        assert(
            settings.minimum <= limit && limit <= settings.maximum,
            "limit \(limit) outside \(settings.minimum)...\(settings.maximum)")
        assert(
            windowGood >= 0 && windowElevated >= 0 && windowGood + windowElevated < Swift.max(limit, 1),
            "window \(windowGood)+\(windowElevated) for limit \(limit)")
        assert(
            recoveryRemaining >= 0 && slowStreak >= 0 && slowStreak < 2,
            "recovery \(recoveryRemaining), slow streak \(slowStreak)")
        assert(
            groupCount < Self.groupSize && epochSamples < settings.baselineWindow && epochElevated <= epochSamples,
            "baseline counters")
        if let probe {
            assert(
                limit <= probe.restore && probe.restore <= settings.maximum,
                "probe restores \(probe.restore) from \(limit)")
        }
    }
}
