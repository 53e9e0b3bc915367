import CLibEvent

/// A one-shot or repeating timer on an ``EventLoop``.
///
/// Create, arm and cancel it on the loop thread; the handler runs on the loop thread. The timer
/// keeps itself alive while armed, so a caller may drop its reference to a one-shot timer
/// it never needs to cancel. Once cancelled (or fired, for a one-shot timer) it may be re-armed.
public final class LoopTimer {
    private let loop: EventLoop
    private var event: OpaquePointer?
    private var handler: () -> Void
    private var repeating = false
    /// Retains self while armed, so the C callback's unretained context stays valid.
    private var selfWhileArmed: LoopTimer?

    /// Creates an unarmed timer whose `handler` runs on the loop each time it fires.
    public init(loop: EventLoop, handler: @escaping () -> Void) {
        loop.preconditionInLoop()
        self.loop = loop
        self.handler = handler
    }

    deinit {
        if let event { event_free(event) }
    }

    /// Arms the timer to fire after `delay`, and then every `delay` again if `repeating`.
    /// Re-arming an armed timer replaces its schedule.
    public func schedule(after delay: Duration, repeating: Bool = false) {
        loop.preconditionInLoop()
        if event == nil {
            let context = Unmanaged.passUnretained(self).toOpaque()
            event = event_new(
                loop.base, -1, repeating ? Int16(EV_PERSIST) : 0,
                { _, _, context in
                    Unmanaged<LoopTimer>.fromOpaque(context!).takeUnretainedValue().fire()
                }, context)
        } else if repeating != self.repeating {
            event_del(event)
            let context = Unmanaged.passUnretained(self).toOpaque()
            event_assign(
                event, loop.base, -1, repeating ? Int16(EV_PERSIST) : 0,
                { _, _, context in
                    Unmanaged<LoopTimer>.fromOpaque(context!).takeUnretainedValue().fire()
                }, context)
        }
        self.repeating = repeating
        var interval = timeval(duration: delay)
        event_add(event, &interval)
        selfWhileArmed = self
    }

    /// Disarms the timer. Safe to call when it is not armed, and from its own handler.
    public func cancel() {
        loop.preconditionInLoop()
        if let event { event_del(event) }
        selfWhileArmed = nil
    }

    /// Whether the timer is armed.
    public var isArmed: Bool { selfWhileArmed != nil }

    private func fire() {
        // Keep self alive for the handler even if the handler or the one-shot release drops it.
        let keepAlive = self
        if !repeating { selfWhileArmed = nil }
        keepAlive.handler()
    }
}

extension timeval {
    /// A timeval for `duration`, never negative.
    init(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds < 0) {
            self.init(tv_sec: 0, tv_usec: 0)
        } else {
            self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        }
    }
}
