/// Polls `condition` every `interval` until it holds or `timeout` passes; returns whether it held.
///
/// The result is the test's to judge: `#expect(await eventually { … })`, or
/// `try #require(await eventually { … })` when what follows needs the condition. A wait whose
/// result is thrown away passes silently when it times out.
public func eventually(
    timeout: Duration = .seconds(10), every interval: Duration = .milliseconds(10), _ condition: () async -> Bool
) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    repeat {
        if await condition() { return true }
        // The poll interval, not a wait for anything: the condition decides.
        try? await Task.sleep(for: interval)
    } while ContinuousClock.now < deadline
    return await condition()
}
