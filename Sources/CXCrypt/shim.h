#pragma once
// libxcrypt's crypt_rn and crypt_gensalt_rn (bcrypt); nothing else.
#include <crypt.h>
