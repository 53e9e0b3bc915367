/// The serial executor of actors that run on an ``EventLoop``: their jobs go into the loop's
/// queue marked as actor jobs, and run on the loop thread. Obtain it through
/// `loop.asUnownedSerialExecutor()`.
public final class LoopSerialExecutor: SerialExecutor, @unchecked Sendable {
    // @unchecked Sendable: the only state is an immutable reference to the loop, which is
    // Sendable; the loop outlives every actor that uses it (it is never deallocated while its
    // thread runs).
    unowned let loop: EventLoop

    init(loop: EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        loop.enqueue(UnownedJob(job), kind: .serial)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func checkIsolated() {
        loop.checkIsolated()
    }

    public func isIsolatingCurrentContext() -> Bool? {
        loop.inLoop
    }
}
