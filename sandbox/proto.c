/* sandbox/proto.c - what the parent and the init both use to talk: typed
 * records, whole reads, small writes.  A file of its own so that the init
 * program (sandbox/initexe/main.c) links without the handle's code. */
#include "sandbox/sandbox_internal.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

int sandbox_send_rec(int fd, int kind, int status, int err, const char *msg)
{
	sandbox_rec r = {kind, status, err, {0}};
	if (msg)
		snprintf(r.msg, sizeof(r.msg), "%s", msg);
	return cbl_write_all(fd, &r, sizeof(r));
}

int sandbox_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int sandbox_write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = cbl_write_all(fd, s, strlen(s));
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}
