#pragma once
// hiredis 0.14 ships a .pc with a -D flag that SwiftPM warns about, so no pkgConfig here.
#include <hiredis/hiredis.h>

// POLLRDHUP (the peer shut its writing side) is declared only under _GNU_SOURCE, which a
// module map cannot set before <poll.h> is first read: the Linux value, behind a function.
#include <poll.h>
#ifndef POLLRDHUP
#define POLLRDHUP 0x2000
#endif
static inline short authd_pollrdhup(void) { return POLLRDHUP; }
