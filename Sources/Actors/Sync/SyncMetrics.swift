import Foundation
import Metrics

/// The sync layer's metrics. The factory is injected so tests can read them from a test factory
/// without bootstrapping the process-wide metrics system.
struct SyncMetrics: Sendable {
    let factory: any MetricsFactory

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
        Counter(label: "sync_batches_total", dimensions: [("result", outcome.result.rawValue)], factory: factory)
            .increment()
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

    // MARK: Coordination (docs/COORDINATION.md)

    /// This instance, as leader, started or stopped producing a shared run of `kind`.
    func producing(_ kind: SyncRun.Kind, _ producing: Bool) {
        Gauge(label: "sync_run_in_progress", dimensions: [("kind", kind.rawValue)], factory: factory).record(
            producing ? 1 : 0)
    }

    func batchesAppended(_ count: Int) {
        Counter(label: "sync_stream_appended_total", factory: factory).increment(by: count)
    }

    func batchesRead(_ count: Int, claimed: Bool) {
        guard count > 0 else { return }
        Counter(label: "sync_stream_read_total", dimensions: [("how", claimed ? "claimed" : "new")], factory: factory)
            .increment(by: count)
    }

    /// A batch appended under an older fence than the current one (a previous leader's).
    func batchFromOldLeader() {
        Counter(label: "sync_batches_from_old_leader_total", factory: factory).increment()
    }

    /// A pending batch found trimmed from the stream before anyone processed it.
    func batchesLost(_ count: Int) {
        guard count > 0 else { return }
        Counter(label: "sync_batches_lost_total", factory: factory).increment(by: count)
    }

    /// A batch processed twice (claimed from a slow instance), booked once.
    func batchDuplicate() {
        Counter(label: "sync_batches_duplicate_total", factory: factory).increment()
    }
}
