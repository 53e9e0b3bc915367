public import CThreadSanitizer
public import Synchronization

/// A `Mutex` whose hand-over ThreadSanitizer sees.
///
/// `Synchronization.Mutex` on Linux passes a contended lock between threads through PI-futex
/// system calls in its uninstrumented slow path, so ThreadSanitizer sees no ordering between
/// the previous holder's writes and the next holder's reads and reports the state the lock
/// protects as a race. This wrapper adds the edge by hand: whoever takes the lock acquires the
/// protected value's address, and releases it before letting go. Outside a ThreadSanitizer
/// build the two annotations are empty C calls.
///
/// Use it wherever a `Mutex` would do; the API is `Mutex`'s `withLock`.
public struct AnnotatedMutex<Value: ~Copyable>: ~Copyable, Sendable {
    @usableFromInline let mutex: Mutex<Value>

    public init(_ initialValue: consuming sending Value) {
        mutex = Mutex(initialValue)
    }

    /// Runs `body` with the value while holding the lock.
    @inlinable
    public borrowing func withLock<Result: ~Copyable, Failure: Error>(
        _ body: (inout sending Value) throws(Failure) -> sending Result
    ) throws(Failure) -> sending Result {
        try mutex.withLock { (value: inout sending Value) throws(Failure) -> sending Result in
            let address = withUnsafeMutablePointer(to: &value) { UnsafeRawPointer($0) }
            chat_tsan_acquire(address)
            defer { chat_tsan_release(address) }
            return try body(&value)
        }
    }
}
