/* util/spawn.h - posix_spawn attributes for a helper process: every signal
 * unblocked and at its default disposition, whatever the caller changed. */
#ifndef CBL_SPAWN_H
#define CBL_SPAWN_H

#include <spawn.h>

/* Initialises *at (caller destroys it) with an empty signal mask, every
 * signal's default disposition, and flags (POSIX_SPAWN_SETSID, ...) too. */
void cbl_spawnattr_clean(posix_spawnattr_t *at, short flags);

#endif
