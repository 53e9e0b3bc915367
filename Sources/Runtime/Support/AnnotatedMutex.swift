public import CThreadSanitizer
public import Synchronization

/// A `Mutex` whose hand-over ThreadSanitizer sees.
///
/// `Synchronization.Mutex` on Linux passes a contended lock between threads through PI-futex
/// system calls in its uninstrumented slow path, so ThreadSanitizer sees no ordering between
/// the previous holder's writes and the next holder's reads and reports the state the lock
/// protects as a race. This wrapper adds the edge by hand: whoever takes the lock acquires a
/// token address of its own, and releases it before letting go. (Not the protected value's
/// address: taking it is itself an access, which would come before the acquire.) Outside a
/// ThreadSanitizer build the two annotations are empty C calls.
///
/// Use it wherever a `Mutex` would do; the API is `Mutex`'s `withLock`.
public struct AnnotatedMutex<Value: ~Copyable>: ~Copyable, @unchecked Sendable {
    // @unchecked Sendable: the value is only reached through `Mutex`, which is Sendable; the
    // token is an identity for the annotations, never dereferenced, freed once in deinit.
    @usableFromInline let mutex: Mutex<Value>
    /// The address the annotations name: one byte owned by this mutex, never read or written.
    @usableFromInline let token: UnsafeMutableRawPointer

    public init(_ initialValue: consuming sending Value) {
        mutex = Mutex(initialValue)
        token = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
    }

    deinit {
        token.deallocate()
    }

    /// Runs `body` with the value while holding the lock.
    @inlinable
    public borrowing func withLock<Result: ~Copyable, Failure: Error>(
        _ body: (inout sending Value) throws(Failure) -> sending Result
    ) throws(Failure) -> sending Result {
        try mutex.withLock { (value: inout sending Value) throws(Failure) -> sending Result in
            chat_tsan_acquire(token)
            defer { chat_tsan_release(token) }
            return try body(&value)
        }
    }
}
