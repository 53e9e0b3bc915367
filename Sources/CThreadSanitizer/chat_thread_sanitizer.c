#include "chat_thread_sanitizer.h"

// SwiftPM compiles C targets with -fsanitize=thread in a `--sanitize=thread` build, so the
// annotations exist exactly when the runtime that defines them is linked.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHAT_THREAD_SANITIZER 1
#endif
#endif

#if CHAT_THREAD_SANITIZER
void __tsan_acquire(void *address);
void __tsan_release(void *address);

void chat_tsan_acquire(const void *address) { __tsan_acquire((void *)address); }
void chat_tsan_release(const void *address) { __tsan_release((void *)address); }
#else
void chat_tsan_acquire(const void *address) { (void)address; }
void chat_tsan_release(const void *address) { (void)address; }
#endif
