import CLibEvent
import Foundation
import Synchronization

/// One libevent `event_base` running on its own thread, and the `SerialExecutor` that runs
/// Swift jobs on that thread.
///
/// Actors that own C handles (hiredis contexts, evhttp objects) return this loop's executor as
/// their `unownedExecutor`, so their methods, the C callbacks and the handles all live on one
/// thread. A C callback that fires on the loop can enter such an actor synchronously with
/// `assumeIsolated`, because ``checkIsolated()`` knows the loop thread.
///
/// ## Jobs enqueued after stop
/// ``stop()`` ends libevent dispatch: after it no timer fires and no I/O callback runs, so the
/// owners of C handles must close them before stopping the loop. The loop thread itself keeps
/// running: every Swift job enqueued later still runs on it, in order, so no task is ever
/// stranded (a task awaiting a closed connection gets its error instead of hanging forever).
/// The thread ends with the process.
public final class EventLoop: SerialExecutor, TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable: `base` and `wakeEvent` are created in init and only used on the loop
    // thread afterwards, except for `event_active` and `event_base_loopexit`, which libevent
    // makes thread-safe once `evthread_use_pthreads` ran before the base was created.
    // `serialExecutor` is set once in init, before the loop is shared with any other thread, and
    // only read afterwards. All other mutable state is inside `queue`, a Mutex.

    /// How a queued job must be run: as an actor job on the loop's serial executor, or as a
    /// task job on the loop as the task's preferred executor. Running every job one way
    /// confuses the runtime about the other kind (a continuation's body can then run a loop
    /// turn late, after callbacks queued meanwhile), so the two arrive through different objects.
    enum JobKind {
        case serial, task
    }

    private struct Queue {
        var jobs: [(UnownedJob, JobKind)] = []
        /// A wake-up was requested and the loop has not yet taken the jobs.
        var wakePending = false
        /// libevent dispatch has ended; wake-ups go through `lateWake` instead.
        var dispatchEnded = false
    }

    /// A name for logs and the thread.
    public let name: String
    let base: OpaquePointer
    private var wakeEvent: OpaquePointer?
    private let queue = AnnotatedMutex(Queue())
    private let lateWake = DispatchSemaphore(value: 0)
    private let started = DispatchSemaphore(value: 0)
    private let loopThreadID = AnnotatedMutex<pthread_t?>(nil)
    private let stopRequested = Atomic<Bool>(false)
    /// The loop's face as the serial executor of actors; see ``JobKind``. Created in init and
    /// never changed: actors on several threads read it (`unownedExecutor`), and a `lazy var`
    /// would be created by whichever read came first, racing with the others. Not a `let`
    /// because it refers back to `self`.
    private(set) var serialExecutor: LoopSerialExecutor!
    /// Where ``resolver`` reads its nameservers.
    public let resolverSettings: ResolverSettings
    private let resolverSlot = AnnotatedMutex<DNSResolver?>(nil)

    private static let threadingEnabled: Void = {
        let result = evthread_use_pthreads()
        precondition(result == 0, "evthread_use_pthreads failed")
    }()

    /// Creates the loop and starts its thread.
    /// - Parameter resolver: the nameservers of this loop's ``resolver``.
    public init(name: String = "event-loop", resolver: ResolverSettings = .system) {
        _ = Self.threadingEnabled
        self.name = name
        self.resolverSettings = resolver
        guard let base = Self.makeBase() else {
            fatalError("event_base_new failed")
        }
        self.base = base
        let context = Unmanaged.passUnretained(self).toOpaque()
        self.wakeEvent = event_new(base, -1, Int16(EV_PERSIST), { _, _, context in
            Unmanaged<EventLoop>.fromOpaque(context!).takeUnretainedValue().drain()
        }, context)
        self.serialExecutor = LoopSerialExecutor(loop: self)
        let thread = Thread { [self] in self.threadMain() }
        thread.name = name
        thread.start()
        started.wait()
    }

    /// An epoll base with the change list on: evhttp turns a connection's read and write
    /// events off and on around every request, and the change list folds the changes made
    /// between two dispatches into at most one `epoll_ctl` per descriptor instead of one per
    /// change. That measured about 18 % more requests/s on the read path (docs/PERFORMANCE.md).
    /// libevent's caveat: descriptors cloned with `dup()` must not be registered, which no code
    /// here does (hiredis and evhttp each own their sockets).
    private static func makeBase() -> OpaquePointer? {
        guard let config = event_config_new() else { return nil }
        defer { event_config_free(config) }
        _ = event_config_set_flag(config, Int32(EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST.rawValue))
        return event_base_new_with_config(config)
    }

    private func threadMain() {
        loopThreadID.withLock { $0 = pthread_self() }
        Self.loopThreads.withLock { $0.append(pthread_self()) }
        started.signal()
        // EVLOOP_NO_EXIT_ON_EMPTY: the loop lives until stop(), even with no event added.
        event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY)
        queue.withLock { $0.dispatchEnded = true }
        // Late jobs, see "Jobs enqueued after stop".
        while true {
            drain()
            lateWake.wait()
        }
    }

    /// This loop's name resolver: every host name the loop's connections need is looked up
    /// through it, never with a blocking call on the loop thread. Made on first use; it keeps
    /// the loop alive, as the loop lives as long as the process anyway.
    public var resolver: DNSResolver {
        resolverSlot.withLock { slot in
            if let slot { return slot }
            let created = DNSResolver(loop: self, settings: resolverSettings)
            slot = created
            return created
        }
    }

    // MARK: SerialExecutor

    /// Task jobs: `Task(executorPreference: loop)` and nonisolated code of such tasks.
    public func enqueue(_ job: consuming ExecutorJob) {
        enqueue(UnownedJob(job), kind: .task)
    }

    func enqueue(_ unownedJob: UnownedJob, kind: JobKind) {
        let wake: (needed: Bool, late: Bool) = queue.withLock { queue in
            queue.jobs.append((unownedJob, kind))
            if queue.wakePending { return (false, queue.dispatchEnded) }
            queue.wakePending = true
            return (true, queue.dispatchEnded)
        }
        guard wake.needed else { return }
        if wake.late {
            lateWake.signal()
        } else {
            event_active(wakeEvent, EV_READ, 0)
        }
    }

    /// The serial executor of actors on this loop; their jobs arrive through ``serialExecutor``.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: serialExecutor)
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    public func checkIsolated() {
        precondition(inLoop, "not on the event loop thread of \(name)")
    }

    public func isIsolatingCurrentContext() -> Bool? {
        inLoop
    }

    /// True when called on this loop's thread.
    public var inLoop: Bool {
        guard let id = loopThreadID.withLock({ $0 }) else { return false }
        return pthread_equal(id, pthread_self()) != 0
    }

    /// The threads of every loop started in this process (a loop's thread lives as long as the
    /// process, so none is ever removed).
    private static let loopThreads = AnnotatedMutex<[pthread_t]>([])

    /// True when called on the thread of any event loop. Code that blocks (a database call, file
    /// I/O) must never run there: every connection of that loop would wait for it.
    public static var onAnyLoopThread: Bool {
        let current = pthread_self()
        return loopThreads.withLock { threads in threads.contains { pthread_equal($0, current) != 0 } }
    }

    /// Traps when called off the loop thread: C handles of the loop must only be touched there.
    public func preconditionInLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(inLoop, "must run on the event loop thread of \(name)", file: file, line: line)
    }

    private func drain() {
        // Jobs enqueued while draining wait for the next wake-up, so I/O callbacks get their turn.
        let jobs: [(UnownedJob, JobKind)] = queue.withLock { queue in
            queue.wakePending = false
            return queue.jobs.isEmpty ? [] : queue.jobs.exchange([])
        }
        let executor = asUnownedSerialExecutor()
        let taskExecutor = asUnownedTaskExecutor()
        for (job, kind) in jobs {
            switch kind {
            case .serial: job.runSynchronously(on: executor)
            case .task: job.runSynchronously(on: taskExecutor)
            }
        }
    }

    // MARK: Running work

    /// Runs `body` on the loop thread and returns its result; runs it at once when called there.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async rethrows -> T {
        try await withTaskExecutorPreference(self) {
            try await LoopRunner(loop: self).run(body)
        }
    }

    /// Ends libevent dispatch. Idempotent and callable from any thread; returns at once.
    /// See "Jobs enqueued after stop" for what runs afterwards.
    public func stop() {
        guard !stopRequested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        event_base_loopexit(base, nil)
        // The wake event may be active with jobs queued: dispatch still runs it before exiting,
        // and anything enqueued after that goes through the late path.
    }

    /// Whether ``stop()`` was called.
    public var isStopped: Bool { stopRequested.load(ordering: .acquiring) }

    /// Whether libevent dispatch has ended after ``stop()``: jobs enqueued from now on take the
    /// late path (see "Jobs enqueued after stop"). For tests that must reach that path.
    var hasEndedDispatch: Bool { queue.withLock { $0.dispatchEnded } }
}

extension Array {
    fileprivate mutating func exchange(_ replacement: [Element]) -> [Element] {
        let old = self
        self = replacement
        return old
    }
}

/// Runs closures isolated to a loop; used by ``EventLoop/run(_:)``.
private actor LoopRunner {
    nonisolated let unownedExecutor: UnownedSerialExecutor
    init(loop: EventLoop) { unownedExecutor = loop.asUnownedSerialExecutor() }
    func run<T: Sendable>(_ body: @Sendable () throws -> T) rethrows -> T { try body() }
}
