#pragma once
// Only the reentrant API: fcgi_stdio.h's printf/stdout macros do nothing in Swift.
#include <fcgiapp.h>
// mallopt(M_ARENA_MAX): the responder sizes malloc for its many worker threads.
#include <malloc.h>
// eventfd: one per worker, by which another worker closes its idle kept connection.
#include <sys/eventfd.h>

// POLLRDHUP (the peer shut its writing side) is declared only under _GNU_SOURCE, which a
// module map cannot set before <poll.h> is first read: the Linux value, behind a function.
#include <poll.h>
#ifndef POLLRDHUP
#define POLLRDHUP 0x2000
#endif
static inline short authd_pollrdhup(void) { return POLLRDHUP; }

// accept4 (the connection close-on-exec in the same call) is declared only under
// _GNU_SOURCE, like POLLRDHUP; glibc has it since 2.10. SOCK_CLOEXEC is declared always.
#include <sys/socket.h>
extern int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
static inline int authd_accept_cloexec(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC); }
