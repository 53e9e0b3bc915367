public import Metrics

extension Metrics.Timer {
    /// Records a `Duration` measured with a Swift clock.
    public func recordDuration(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
