import Foundation
import Synchronization

/// A bounded read load against a running chat-service: `workers` threads each send
/// authenticated `GET /v1/chats/{id}/participants` over a keep-alive connection at a paced rate,
/// over hot chats (cached before the fault) and cold ones, while one more thread probes
/// `/health` every `healthInterval` on a fresh connection. Every read and probe is recorded
/// (``LoadFigures``).
///
/// Blocking sockets on threads of their own, so the cooperative pool (and the service under
/// test, when it runs in-process) is not starved. Every wait is bounded: each request by
/// `requestTimeout`, each probe by `healthTimeout`, the whole run by `maxDuration`.
public final class LoadGenerator: @unchecked Sendable {
    // @unchecked Sendable: `recorded` is only touched under `recordLock`; everything else is
    // immutable or atomic. An NSLock (a pthread mutex) rather than Synchronization's Mutex,
    // whose futex ThreadSanitizer cannot see: `make sanitize-thread` reported its users.
    /// What to load and how hard.
    public struct Settings: Sendable {
        public var port: Int
        /// A user JWT for the `Authorization` header.
        public var token: String
        public var hotChats: [String]
        public var coldChats: [String]
        /// The fraction of reads that go to cold chats (taken in turn, so each is cold once).
        public var coldShare: Double = 0.25
        public var workers: Int = 4
        /// Pacing per worker; the machine under test also runs the service and Redis.
        public var requestsPerSecondPerWorker: Int = 100
        public var requestTimeout: Duration = .seconds(10)
        public var healthInterval: Duration = .milliseconds(100)
        public var healthTimeout: Duration = .seconds(3)
        /// A hard stop, in case ``LoadGenerator/stop()`` is never called.
        public var maxDuration: Duration = .seconds(300)
        public var seed: UInt64 = 1

        public init(port: Int, token: String, hotChats: [String], coldChats: [String]) {
            self.port = port
            self.token = token
            self.hotChats = hotChats
            self.coldChats = coldChats
        }
    }

    private struct Recorded {
        var samples: [LoadSample] = []
        var probes: [HealthProbe] = []
    }

    public let settings: Settings
    private let stopRequested = Atomic<Bool>(false)
    private let threadsRunning = Atomic<Int>(0)
    private let recordLock = NSLock()
    private var recorded = Recorded()
    private let coldCursor = Atomic<Int>(0)

    public init(settings: Settings) {
        precondition(!settings.hotChats.isEmpty || !settings.coldChats.isEmpty, "nothing to read")
        precondition(settings.workers >= 1 && settings.requestsPerSecondPerWorker >= 1)
        self.settings = settings
    }

    /// Starts the workers and the health prober.
    public func start() {
        let deadline = ContinuousClock.now + settings.maxDuration
        for worker in 0..<settings.workers {
            launch { [self] in readLoop(worker: worker, until: deadline) }
        }
        launch { [self] in probeLoop(until: deadline) }
    }

    /// Stops every thread (each finishes the request in hand, bounded by its timeout) and
    /// returns what was recorded.
    public func stop() async -> LoadFigures {
        stopRequested.store(true, ordering: .releasing)
        let limit = ContinuousClock.now + max(settings.requestTimeout, settings.healthTimeout) + .seconds(2)
        while threadsRunning.load(ordering: .acquiring) > 0, ContinuousClock.now < limit {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return figures()
    }

    /// Every thread has ended (after ``stop()``, or at `maxDuration`): nothing more is recorded.
    public var hasStopped: Bool { threadsRunning.load(ordering: .acquiring) == 0 }

    /// What was recorded so far.
    public func figures() -> LoadFigures {
        recordLock.withLock { LoadFigures(samples: recorded.samples, probes: recorded.probes) }
    }

    // MARK: Threads

    private var stopping: Bool { stopRequested.load(ordering: .acquiring) }

    private func launch(_ body: @escaping @Sendable () -> Void) {
        threadsRunning.add(1, ordering: .acquiringAndReleasing)
        Thread { [self] in
            body()
            threadsRunning.subtract(1, ordering: .acquiringAndReleasing)
        }.start()
    }

    private func readLoop(worker: Int, until deadline: ContinuousClock.Instant) {
        var random = SplitMix(seed: settings.seed &+ UInt64(worker) &* 0x9E37_79B9)
        let period = Duration.seconds(1) / settings.requestsPerSecondPerWorker
        var connection: RawHTTPConnection?
        var next = ContinuousClock.now
        while !stopping, ContinuousClock.now < deadline {
            let hot = settings.coldChats.isEmpty
                || (!settings.hotChats.isEmpty && Double(random.next() % 10_000) / 10_000 >= settings.coldShare)
            let chat = hot
                ? settings.hotChats[Int(random.next() % UInt64(settings.hotChats.count))]
                : settings.coldChats[coldCursor.add(1, ordering: .relaxed).oldValue % settings.coldChats.count]
            let started = ContinuousClock.now
            var status = 0
            var source = LoadSample.Source.none
            do {
                let open = try connection ?? RawHTTPConnection(port: settings.port, timeout: settings.requestTimeout)
                connection = open
                try open.send("GET /v1/chats/\(chat)/participants HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(settings.token)\r\n\r\n")
                let response = try open.readResponse()
                status = response.status
                source = Self.source(of: response.body)
                if response.header("Connection")?.lowercased() == "close" { connection = nil }
            } catch {
                connection = nil
            }
            let completed = ContinuousClock.now
            let sample = LoadSample(completedAt: completed, latency: completed - started, hot: hot, status: status, source: source)
            recordLock.withLock { recorded.samples.append(sample) }
            next += period
            if next > completed {
                Self.sleep(next - completed)
            } else {
                next = completed
            }
        }
    }

    private func probeLoop(until deadline: ContinuousClock.Instant) {
        while !stopping, ContinuousClock.now < deadline {
            let started = ContinuousClock.now
            var status = 0
            var healthStatus: String?
            do {
                let connection = try RawHTTPConnection(port: settings.port, timeout: settings.healthTimeout)
                try connection.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                let response = try connection.readResponse()
                status = response.status
                let body = response.bodyText
                healthStatus = body.contains(#""status":"ok""#) ? "ok" : (body.contains(#""status":"degraded""#) ? "degraded" : nil)
                connection.close(reset: true)
            } catch {
                status = 0
            }
            let probe = HealthProbe(startedAt: started, latency: ContinuousClock.now - started, status: status, healthStatus: healthStatus)
            recordLock.withLock { recorded.probes.append(probe) }
            let next = started + settings.healthInterval
            let now = ContinuousClock.now
            if next > now { Self.sleep(next - now) }
        }
    }

    private static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) / 1e18)
    }

    private static func source(of body: [UInt8]) -> LoadSample.Source {
        let text = String(decoding: body.suffix(64), as: UTF8.self)
        if text.contains(#""source":"memory""#) { return .memory }
        if text.contains(#""source":"cache""#) { return .cache }
        if text.contains(#""source":"upstream""#) { return .upstream }
        return .none
    }
}

/// SplitMix64, so TestSupport needs no dependency for a seeded sequence.
struct SplitMix {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
