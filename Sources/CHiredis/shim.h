#pragma once
// hiredis 0.14 ships a .pc with a -D flag that SwiftPM warns about, so no pkgConfig here.
#include <hiredis/hiredis.h>
