#pragma once
// Per-thread scheduling for the password lane (AuthCrypto's BcryptLane), which runs its
// bcrypt threads at a lower priority than the request workers. Plain libc: nothing to link.

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

// On Linux `nice` is per thread, but the thread's id is needed to name it: gettid() is
// hidden behind _GNU_SOURCE (which a module map cannot set) and syscall() is variadic,
// so neither imports into Swift. These two call syscall(SYS_gettid) for Swift.
static inline int authd_set_thread_niceness(int niceness) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), niceness);
}

static inline int authd_thread_niceness(void) {
    return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
}

// SCHED_IDLE: the thread runs only when nothing of normal priority wants the CPU. The
// constant is hidden behind _GNU_SOURCE too: its Linux value, 5, behind a function.
#ifndef SCHED_IDLE
#define SCHED_IDLE 5
#endif
static inline int authd_set_thread_idle_policy(void) {
    struct sched_param param = { .sched_priority = 0 };
    return sched_setscheduler(0, SCHED_IDLE, &param);
}

// sched_getscheduler(0) itself imports; wrapped beside its setter so that the lane's
// tests read the policy through the same header that sets it.
static inline int authd_thread_policy(void) {
    return sched_getscheduler(0);
}
