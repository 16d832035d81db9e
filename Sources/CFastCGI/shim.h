#pragma once
// Only the reentrant API: fcgi_stdio.h's printf/stdout macros do nothing in Swift.
#include <fcgiapp.h>
