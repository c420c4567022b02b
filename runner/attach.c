/* runner/attach.c - the wire of a build's debug socket (runner/debug.c
 * serves it): requests with their descriptors (SCM_RIGHTS), fixed-size
 * answers; and the client's side, for `attach`, `exec` and run --debug. */
#include "runner/runner_internal.h"
#include "store/store.h"
#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/banned.h"

int runner_debug_recv(int fd, runner_debug_request *rq, int fds[3], int *nfds, char **strs, char ***args,
		      cbl_error **err)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = rq, .iov_len = sizeof(*rq)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
	*nfds = 0;
	*strs = NULL;
	*args = NULL;
	ssize_t n;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int got[4];
		memcpy(got, CMSG_DATA(c), k * sizeof(int));
		for (size_t i = 0; i < k; i++) {
			if (*nfds < 3)
				fds[(*nfds)++] = got[i];
			else
				close(got[i]);
		}
	}
	if (n != (ssize_t)sizeof(*rq) || rq->magic != RUNNER_DEBUG_MAGIC || rq->kind < RUNNER_DEBUG_SHELL ||
	    rq->kind > RUNNER_DEBUG_RESUME || rq->len > (1u << 20) || rq->argc > 4096)
		return cbl_error_set(err, CBL_EINVAL, "malformed request");
	char *s = cbl_xmalloc(rq->len + 1);
	size_t got = 0;
	while (got < rq->len) {
		ssize_t r = recv(fd, s + got, rq->len - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(s);
			return cbl_error_set(err, CBL_EINVAL, "malformed request");
		}
		got += (size_t)r;
	}
	s[rq->len] = '\0';
	char **a = cbl_xcalloc(rq->argc + 1, sizeof(char *));
	size_t off = 0;
	for (uint32_t i = 0; i < rq->argc; i++) {
		if (off >= rq->len) {
			free(a);
			free(s);
			return cbl_error_set(err, CBL_EINVAL, "malformed request");
		}
		a[i] = s + off;
		off += strlen(s + off) + 1;
	}
	if (rq->kind == RUNNER_DEBUG_EXEC && !rq->argc) {
		free(a);
		free(s);
		return cbl_error_set(err, CBL_EINVAL, "exec: no command");
	}
	*strs = s;
	*args = a;
	return 0;
}

int runner_attach_connect(const char *home, const char *build_id, int *out, cbl_error **err)
{
	const char *colon = strchr(build_id, ':');
	if (!colon || colon == build_id || !colon[1] || strchr(colon + 1, '/') || strstr(build_id, ".."))
		return cbl_error_set(err, CBL_EINVAL, "'%s' is not a build id (PROJECT:UUID)", build_id);
	char *h = home ? cbl_xstrdup(home) : store_default_home();
	char *dir = cbl_xasprintf("%s/builds/%.*s/%s", h, (int)(colon - build_id), build_id, colon + 1);
	int rc = 0, sock = -1;
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		if (errno == EACCES)
			rc = cbl_error_set(err, CBL_EIO,
					   "build %s: permission denied: only the user who started the build, or root, "
					   "may enter it",
					   build_id);
		else
			rc = cbl_error_set(err, CBL_ENOENT, "no build %s under %s", build_id, h);
		goto out;
	}
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d/debug.sock", dfd);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		if (e == EACCES)
			rc = cbl_error_set(err, CBL_EIO,
					   "build %s: permission denied: only the user who started the build, or root, "
					   "may enter it",
					   build_id);
		else
			rc = cbl_error_set(err, CBL_EIO,
					   "build %s is not running in a sandbox (it ended, or runs with --sandbox none)",
					   build_id);
		goto out;
	}
	*out = sock;
	sock = -1;
out:
	if (sock >= 0)
		close(sock);
	if (dfd >= 0)
		close(dfd);
	free(dir);
	free(h);
	return rc;
}

int runner_attach_send(int fd, runner_debug_kind kind, unsigned flags, const char *const *argv, const int *fds,
		       int nfds, cbl_error **err)
{
	cbl_buf b = CBL_BUF_INIT;
	runner_debug_request rq = {.magic = RUNNER_DEBUG_MAGIC, .kind = kind, .flags = flags};
	for (size_t i = 0; argv && argv[i]; i++) {
		cbl_buf_append(&b, argv[i], strlen(argv[i]) + 1);
		rq.argc++;
	}
	rq.len = (uint32_t)b.len;
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct iovec iov = {.iov_base = &rq, .iov_len = sizeof(rq)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds > 0) {
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	int rc = 0;
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(rq) ||
	    (b.len && send(fd, b.ptr, b.len, MSG_NOSIGNAL) != (ssize_t)b.len))
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "the build went away");
	cbl_buf_release(&b);
	return rc;
}

int runner_attach_read(int fd, runner_debug_reply *r, cbl_error **err)
{
	size_t got = 0;
	while (got < sizeof(*r)) {
		ssize_t n = recv(fd, (char *)r + got, sizeof(*r) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cbl_error_set(err, CBL_EIO, "the build went away");
		got += (size_t)n;
	}
	r->msg[sizeof(r->msg) - 1] = '\0';
	return 0;
}
