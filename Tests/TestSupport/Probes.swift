/// Probes something repeatedly for a window: at least `minimumProbes` probes and at least until
/// `window` has passed since `start`, one every `interval`, bounded by `bound` since `start`.
/// Returns how many probes ran and the numbers (1-based) of those that failed.
///
/// Counted and timed both: a probe that spawns a process (a `curl` in a network namespace) can
/// take half a second under a sanitizer, so a window of time alone may hold too few probes to
/// mean anything. The caller judges the count (`#expect(probes >= minimum)`): fewer means the
/// bound cut the loop short.
public func probeRepeatedly(
    since start: ContinuousClock.Instant, window: Duration, minimumProbes: Int, bound: Duration = .seconds(20),
    every interval: Duration = .milliseconds(100), _ probe: () async -> Bool
) async -> (probes: Int, failed: [Int]) {
    var probes = 0
    var failed: [Int] = []
    while ContinuousClock.now - start < bound, probes < minimumProbes || ContinuousClock.now - start < window {
        probes += 1
        if await !probe() { failed.append(probes) }
        // The probes' spacing, not a wait for anything.
        try? await Task.sleep(for: interval)
    }
    return (probes, failed)
}
