import Foundation

/// Exponential backoff with jitter, for reconnects and upstream retries.
///
/// Attempt 1 waits `initial`, each further attempt `multiplier` times longer, never more than
/// `maximum`. Jitter spreads the wait by up to ±`jitter` of itself so that instances which failed
/// together do not retry together; the result still stays within `0...maximum`.
public struct Backoff: Sendable, Hashable {
    /// The wait before the first retry, before jitter.
    public let initial: Duration
    /// The longest wait, jitter included.
    public let maximum: Duration
    /// Growth per attempt; at least 1.
    public let multiplier: Double
    /// The fraction by which a wait may be shortened or lengthened at random; 0...1.
    public let jitter: Double

    /// - Precondition: `.zero <= initial <= maximum`, `multiplier >= 1`, `0 <= jitter <= 1`.
    public init(initial: Duration, maximum: Duration, multiplier: Double = 2, jitter: Double = 0.2) {
        precondition(initial >= .zero && initial <= maximum, "Backoff needs 0 <= initial <= maximum")
        precondition(multiplier >= 1 && multiplier.isFinite, "Backoff multiplier must be finite and at least 1")
        precondition((0...1).contains(jitter), "Backoff jitter must be within 0...1")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The wait before retry number `attempt` (1-based; smaller values count as 1), without jitter.
    public func baseDelay(attempt: Int) -> Duration {
        .nanoseconds(baseNanoseconds(attempt: attempt))
    }

    /// The wait before retry number `attempt` (1-based; smaller values count as 1), with jitter
    /// drawn from `random`.
    public func delay(attempt: Int, random: inout some RandomNumberGenerator) -> Duration {
        let base = Double(baseNanoseconds(attempt: attempt))
        guard jitter > 0 else { return .nanoseconds(Self.saturatingInt64(base)) }
        let factor = 1 + jitter * Double.random(in: -1...1, using: &random)
        let jittered = (base * factor).rounded()
        let upperBound = Double(Self.nanoseconds(maximum))
        return .nanoseconds(Self.saturatingInt64(max(0, min(upperBound, jittered))))
    }

    /// Computed in whole nanoseconds so that a jitter-free delay is exact (100 ms stays 100 ms).
    private func baseNanoseconds(attempt: Int) -> Int64 {
        let exponent = Double(max(attempt, 1) - 1)
        let grown = Double(Self.nanoseconds(initial)) * pow(multiplier, exponent)
        let capped = min(grown, Double(Self.nanoseconds(maximum)))
        return Self.saturatingInt64(capped.rounded())
    }

    /// `Double(Int64.max)` rounds up past `Int64.max`, so the conversion must saturate.
    private static func saturatingInt64(_ value: Double) -> Int64 {
        value >= 9_223_372_036_854_775_807.0 ? .max : Int64(value)
    }

    /// `duration` in nanoseconds, saturating at `Int64.max` (about 292 years).
    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (total, overflowAdding) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowAdding ? .max : total
    }
}
