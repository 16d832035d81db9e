#pragma once
// Only the reentrant API: fcgi_stdio.h's printf/stdout macros do nothing in Swift.
#include <fcgiapp.h>
// mallopt(M_ARENA_MAX): the responder sizes malloc for its many worker threads.
#include <malloc.h>
// eventfd: one per worker, by which another worker closes its idle kept connection.
#include <sys/eventfd.h>
