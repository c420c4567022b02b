/* server/session.c - the dashboard's sign-in token and sessions
 * (server/dashboard.h).  Ids and tokens are 32 random bytes from OpenSSL,
 * in hex; compared in constant time.  Sessions live as long as `serve`. */
#include "server/dashboard.h"
#include "util/alloc.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

#define MAX_SESSIONS 64

struct server_session {
	char id[65];
	char csrf[65];
};

struct server_sessions {
	pthread_mutex_t lock;
	char token[65];
	bool used;
	struct server_session v[MAX_SESSIONS];
	size_t n, next; /* next: the slot a new session takes when full (oldest) */
};

/* False when there is no randomness: never hand out a guessable secret. */
static bool random_hex(char out[65])
{
	unsigned char r[32];
	if (RAND_bytes(r, sizeof(r)) != 1)
		return false;
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return true;
}

bool server_secret_equal(const char *a, const char *b)
{
	size_t n = strlen(a);
	if (!n || n != strlen(b))
		return false;
	return CRYPTO_memcmp(a, b, n) == 0;
}

server_sessions *server_sessions_new(void)
{
	server_sessions *s = cbl_xcalloc(1, sizeof(*s));
	if (!random_hex(s->token)) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void server_sessions_free(server_sessions *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

const char *server_sessions_token(const server_sessions *s) { return s->token; }

bool server_sessions_login(server_sessions *s, const char *token, char sid[65])
{
	bool ok = false;
	pthread_mutex_lock(&s->lock);
	if (!s->used && token && server_secret_equal(token, s->token)) {
		struct server_session fresh;
		if (random_hex(fresh.id) && random_hex(fresh.csrf)) {
			s->used = true;
			size_t i = s->n < MAX_SESSIONS ? s->n++ : s->next;
			if (i == s->next && s->n == MAX_SESSIONS)
				s->next = (s->next + 1) % MAX_SESSIONS;
			s->v[i] = fresh;
			memcpy(sid, fresh.id, 65);
			ok = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

bool server_sessions_check(server_sessions *s, const char *sid, char csrf[65])
{
	bool ok = false;
	if (!sid)
		return false;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n && !ok; i++)
		if (server_secret_equal(sid, s->v[i].id)) {
			memcpy(csrf, s->v[i].csrf, 65);
			ok = true;
		}
	pthread_mutex_unlock(&s->lock);
	return ok;
}
