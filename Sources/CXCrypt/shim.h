#pragma once
#include <crypt.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

// The password lane runs its bcrypt threads at a lower priority than the request
// workers. On Linux `nice` is per thread, but gettid() is hidden behind _GNU_SOURCE and
// syscall() is variadic, so neither imports into Swift: these wrappers do it.
static inline int authd_set_thread_niceness(int niceness) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), niceness);
}

// SCHED_IDLE (5, hidden behind _GNU_SOURCE too): the thread runs only when nothing of
// normal priority wants the CPU.
#include <sched.h>
static inline int authd_set_thread_idle_policy(void) {
    struct sched_param param = { .sched_priority = 0 };
    return sched_setscheduler(0, 5, &param);
}

static inline int authd_thread_policy(void) {
    return sched_getscheduler(0);
}

static inline int authd_thread_niceness(void) {
    return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
}
