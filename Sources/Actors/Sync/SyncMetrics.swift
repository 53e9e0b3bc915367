import Metrics
import Foundation

/// The sync layer's metrics. The factory is injected so tests can read them from a test factory
/// without bootstrapping the process-wide metrics system.
struct SyncMetrics: Sendable {
    let factory: any MetricsFactory

    func runStarted(_ kind: SyncRun.Kind) {
        Gauge(label: "sync_run_in_progress", dimensions: [("kind", kind.rawValue)], factory: factory).record(1)
    }

    func runFinished(_ run: SyncRun) {
        Gauge(label: "sync_run_in_progress", dimensions: [("kind", run.kind.rawValue)], factory: factory).record(0)
        Counter(
            label: "sync_runs_total", dimensions: [("kind", run.kind.rawValue), ("result", run.state.rawValue)],
            factory: factory
        ).increment()
        let seconds = max(0, (run.finishedAt ?? run.startedAt).timeIntervalSince(run.startedAt))
        Metrics.Timer(label: "sync_run_duration_seconds", dimensions: [("kind", run.kind.rawValue)], factory: factory)
            .recordNanoseconds(Int64((seconds * 1e9).rounded()))
    }

    func batchFinished(_ outcome: BatchOutcome) {
        Counter(label: "sync_batches_total", dimensions: [("result", outcome.result.rawValue)], factory: factory).increment()
        if outcome.chatsRefreshed > 0 {
            Counter(label: "sync_chats_refreshed_total", factory: factory).increment(by: outcome.chatsRefreshed)
        }
        if outcome.chatsNotFound > 0 {
            Counter(label: "sync_chats_not_found_total", factory: factory).increment(by: outcome.chatsNotFound)
        }
        if outcome.chatsFailed > 0 {
            Counter(label: "sync_chats_failed_total", factory: factory).increment(by: outcome.chatsFailed)
        }
    }
}
