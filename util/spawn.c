/* util/spawn.c - see spawn.h. */
#include "util/spawn.h"

#include <signal.h>

#include "util/banned.h"

void cbl_spawnattr_clean(posix_spawnattr_t *at, short flags)
{
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(at);
	posix_spawnattr_setsigmask(at, &none);
	posix_spawnattr_setsigdefault(at, &all);
	posix_spawnattr_setflags(at, (short)(flags | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
}
