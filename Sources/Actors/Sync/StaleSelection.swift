import Foundation

/// Which tracked chats an interval or catch-up run refreshes.
enum StaleSelection {
    /// The chats of `chats` that are stale at `horizon` (the latest moment the next interval run
    /// can start) or have no entry at all, in the given order. Refreshing what will be stale by
    /// the next run, not only what is stale now, keeps a read from ever finding the entry stale
    /// between two runs.
    static func due(
        _ chats: [ChatID], fetchedAt: [ChatID: Date], horizon: Date, staleThreshold: Duration
    ) -> [ChatID] {
        let threshold = staleThreshold.timeInterval
        return chats.filter { chat in
            guard let fetched = fetchedAt[chat] else { return true }
            return horizon.timeIntervalSince(fetched) >= threshold
        }
    }
}

/// The wait between two interval runs.
enum IntervalJitter {
    /// `interval` spread at random by up to ±`jitter` of itself (0...1), so that instances started
    /// together do not hit upstream together.
    static func delay(interval: Duration, jitter: Double, random: inout some RandomNumberGenerator) -> Duration {
        guard jitter > 0 else { return interval }
        let factor = 1 + jitter * Double.random(in: -1...1, using: &random)
        return .milliseconds(Int64((interval.timeInterval * factor * 1000).rounded()))
    }

    /// The longest wait ``delay(interval:jitter:random:)`` can return.
    static func longest(interval: Duration, jitter: Double) -> Duration {
        .milliseconds(Int64((interval.timeInterval * (1 + max(0, jitter)) * 1000).rounded()))
    }
}
