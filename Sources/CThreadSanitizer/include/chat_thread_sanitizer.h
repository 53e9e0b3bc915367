#ifndef CHAT_THREAD_SANITIZER_H
#define CHAT_THREAD_SANITIZER_H

// Happens-before edges for ThreadSanitizer, for synchronisation it cannot see by itself.
// Without ThreadSanitizer both functions do nothing.

/// The calling thread acquires whatever was released on `address` before.
void chat_tsan_acquire(const void *address);

/// The calling thread releases its prior writes to whoever acquires `address` next.
void chat_tsan_release(const void *address);

#endif
