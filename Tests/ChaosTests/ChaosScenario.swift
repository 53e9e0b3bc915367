import Actors
import Foundation
import TestSupport
import ChatService

/// A fault a scenario injects: ``begin`` starts it and returns what ends it; the end returns
/// the failures of any check it makes on its own (e.g. "the data survived the restart").
struct Fault: Sendable {
    /// Which dependency suffers, which decides how recovery is measured.
    enum Target: Sendable {
        /// Recovery: `/health` says `ok` again.
        case redis
        /// Recovery: a cold read is answered by upstream again.
        case upstream
    }

    typealias End = @Sendable () async throws -> [String]

    var target: Target
    var duration: Duration
    var begin: @Sendable (ChaosEnvironment) async throws -> End
}

/// How a scenario runs besides its fault.
struct ScenarioOptions: Sendable {
    var settings = ChaosEnvironment.Settings()
    /// Chats refreshed by hand (admin route) during the fault; the last ones of the data set,
    /// which the load never reads.
    var manualRefreshes = 5
    /// Start a full refresh half-way through the fault.
    var fullRun = true
    var workers = 3
    var requestsPerSecondPerWorker = 60
    /// Reads go on this long before the fault and after recovery.
    var calmPeriod: Duration = .seconds(1)
    /// RSS may grow by at most this much over the scenario.
    var rssGrowthLimitKilobytes = 64 * 1024
    /// What recovery may take beyond the configured policy: process scheduling on a loaded
    /// two-core machine, the prober's 100 ms period. A generous bound, not a latency target.
    var recoverySlack: Duration = .seconds(5)
}

/// Runs one chaos scenario end to end and reports its figures; see ``run(_:fault:options:)``.
enum ChaosScenario {
    /// Starts the environment, warms the hot chats, starts the read load, injects the fault
    /// (with manual refreshes and a full run while it lasts), ends it, waits for recovery and
    /// for every acknowledged write to reach Redis, then checks:
    /// - the process is alive and `/health` answered every probe;
    /// - no hot read got a 5xx or no answer;
    /// - recovery came within the configured policy (plus slack);
    /// - no acknowledged manual refresh and no refreshed chat of a batch is missing from Redis,
    ///   and every planned batch is done, failed or skipped;
    /// - RSS grew by less than the bound.
    /// The record is appended to `$CHAOS_REPORT`; its `failures` list what did not hold.
    static func run(_ name: String, fault: Fault, options: ScenarioOptions = ScenarioOptions()) async throws -> ScenarioRecord {
        var record = ScenarioRecord(scenario: name)
        let environment = try await ChaosEnvironment.start(options.settings)
        do {
            try await drive(environment, fault: fault, options: options, into: &record)
        } catch {
            record.failures.append("scenario aborted: \(error)")
        }
        record.processAlive = environment.service.process.isRunning
        record.check(record.processAlive, "the service process died: \(environment.service.output().suffix(2000))")
        await environment.shutdown()
        record.append()
        return record
    }

    private static func drive(
        _ environment: ChaosEnvironment, fault: Fault, options: ScenarioOptions, into record: inout ScenarioRecord
    ) async throws {
        try await environment.warmHotChats()
        let manualChats = Array(environment.allChats.suffix(options.manualRefreshes))
        var loadSettings = LoadGenerator.Settings(
            port: environment.httpPort, token: ChaosEnvironment.userToken,
            hotChats: environment.hotChats,
            coldChats: environment.coldChats.filter { !manualChats.contains($0) })
        loadSettings.workers = options.workers
        loadSettings.requestsPerSecondPerWorker = options.requestsPerSecondPerWorker
        let load = LoadGenerator(settings: loadSettings)
        load.start()
        // The calm phase before the fault is part of the scenario (its reads are the baseline
        // the report compares against), not a wait for anything.
        try await Task.sleep(for: options.calmPeriod)
        record.rssBeforeKilobytes = environment.residentKilobytes()
        await environment.bumpAllChats()

        // The fault, and the writes made while it lasts.
        let faultStarted = ContinuousClock.now
        let end = try await fault.begin(environment)
        var acknowledged: [String: String] = [:]
        for chat in manualChats {
            let reply = await environment.admin("POST", "/internal/chats/\(chat)/participants/refresh")
            if reply.status == 200, let fetchedAt = reply.json["fetched_at"] as? String {
                acknowledged[chat] = fetchedAt
            }
        }
        record.manualRefreshesAcknowledged = acknowledged.count
        var jobID: String?
        if options.fullRun {
            // Half-way: the full run fills L1 with every chat, so cold reads meet the fault
            // alone first.
            // Within the fault, which lasts its set duration.
            try await Task.sleep(until: faultStarted + fault.duration / 2)
            let reply = await environment.admin("POST", "/internal/participants/refresh")
            jobID = reply.json["job_id"] as? String
            record.check(reply.status == 202 && jobID != nil, "the full refresh was not accepted during the fault: \(reply.status)")
        }
        let faultDeadline = faultStarted + fault.duration
        // The fault is held for its duration: that is the fault injected.
        if faultDeadline > ContinuousClock.now { try await Task.sleep(until: faultDeadline) }
        record.failures += try await end()
        let faultEnded = ContinuousClock.now
        record.faultSeconds = (faultEnded - faultStarted).milliseconds / 1000

        // Recovery.
        let bound: Duration
        switch fault.target {
        case .redis:
            bound = environment.redisRecoveryBound
            let recovered = await eventually(timeout: bound + options.recoverySlack + .seconds(10)) {
                load.figures().healthRecovery(after: faultEnded) != nil
            }
            record.recoverySeconds = recovered
                ? load.figures().healthRecovery(after: faultEnded).map { $0.milliseconds / 1000 } : nil
        case .upstream:
            bound = UpstreamClient.Settings().breakerOpenDuration + environment.configuration.participants.maxAPITimeout
            let recovered = await eventually(timeout: bound + options.recoverySlack + .seconds(10)) {
                load.figures().upstreamRecovery(after: faultEnded) != nil
            }
            record.recoverySeconds = recovered
                ? load.figures().upstreamRecovery(after: faultEnded).map { $0.milliseconds / 1000 } : nil
        }
        record.recoveryBoundSeconds = bound.milliseconds / 1000
        if let recovery = record.recoverySeconds {
            record.check(recovery <= (bound + options.recoverySlack).milliseconds / 1000,
                         "recovery took \(recovery) s, policy bound \(bound) + slack \(options.recoverySlack)")
        } else {
            record.failures.append("no recovery observed after the fault ended")
        }

        // The full run and the writes.
        if let jobID {
            let job = await environment.waitForJob(jobID, timeout: .seconds(90))
            record.check(job != nil, "the full refresh \(jobID) still ran 90 s after the fault")
            if let job { record.batches = batches(of: job) }
        }
        let chatsRefreshed = record.batches.chatsRefreshed
        let converged = await eventually(timeout: .seconds(20)) {
            let lost = await lostManualRefreshes(acknowledged, in: environment)
            let inRedis = await environment.chatsInRedis(atLeast: 2)
            return lost == 0 && inRedis >= chatsRefreshed
        }
        if converged { record.writesConvergedSeconds = (ContinuousClock.now - faultEnded).milliseconds / 1000 }
        record.manualRefreshesLost = await lostManualRefreshes(acknowledged, in: environment)
        record.batches.chatsLost = max(0, record.batches.chatsRefreshed - (await environment.chatsInRedis(atLeast: 2)))
        record.check(record.manualRefreshesLost == 0,
                     "\(record.manualRefreshesLost) acknowledged manual refreshes are not in Redis 20 s after the fault")
        record.check(record.batches.chatsLost == 0, "\(record.batches.chatsLost) chats a batch refreshed are not in Redis")
        record.check(record.batches.unaccounted == 0, "\(record.batches.unaccounted) planned batches are unaccounted for")

        // The calm phase after the fault, measured like the one before it.
        try await Task.sleep(for: options.calmPeriod)
        let figures = await load.stop()
        record.take(figures)
        record.rssAfterKilobytes = environment.residentKilobytes()
        record.check(figures.failedProbes.isEmpty, "\(figures.failedProbes.count) /health probes got no 200")
        record.check(record.hot.serverErrors == 0, "\(record.hot.serverErrors) hot reads got a 5xx")
        record.check(record.hot.failures == 0, "\(record.hot.failures) hot reads got no answer")
        if let before = record.rssBeforeKilobytes, let after = record.rssAfterKilobytes {
            record.check(after - before <= options.rssGrowthLimitKilobytes, "RSS grew from \(before) kB to \(after) kB")
        }
    }

    /// Acknowledged refreshes (chat → `fetched_at`) without an entry at least as new in Redis.
    /// Timestamps share one format (UTC, milliseconds), so they compare as strings.
    static func lostManualRefreshes(_ acknowledged: [String: String], in environment: ChaosEnvironment) async -> Int {
        guard !acknowledged.isEmpty else { return 0 }
        let entries = await environment.entries(Array(acknowledged.keys))
        return acknowledged.filter { chat, fetchedAt in
            guard let entry = entries[chat] else { return true }
            return ISO8601Timestamp.string(from: entry.fetchedAt) < fetchedAt
        }.count
    }

    /// The batch counts of a job's JSON.
    static func batches(of job: [String: Any]) -> ScenarioRecord.Batches {
        let counts = job["counts"] as? [String: Any] ?? [:]
        var batches = ScenarioRecord.Batches()
        batches.jobState = job["state"] as? String
        batches.planned = counts["batches_planned"] as? Int ?? 0
        batches.done = counts["batches_done"] as? Int ?? 0
        batches.deferred = counts["batches_deferred"] as? Int ?? 0
        batches.failed = counts["batches_failed"] as? Int ?? 0
        batches.skipped = counts["batches_skipped"] as? Int ?? 0
        batches.chatsRefreshed = counts["chats_refreshed"] as? Int ?? 0
        return batches
    }
}
