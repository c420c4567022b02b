/* Unit tests for server/session.c: the dashboard's one-time sign-in token
 * and its sessions. */
#include "tests/unit/tap.h"
#include "server/dashboard.h"

#include <string.h>

int main(void)
{
	server_sessions *s = server_sessions_new();
	ok(s != NULL, "sessions");
	const char *token = server_sessions_token(s);
	is_int((long long)strlen(token), 64, "a 256-bit token in hex");
	char sid[65], csrf[65], other[65];
	ok(!server_sessions_login(s, "0000", sid), "a wrong token is refused");
	ok(!server_sessions_login(s, "", sid), "an empty token is refused");
	ok(!server_sessions_login(s, NULL, sid), "no token is refused");
	char copy[65];
	memcpy(copy, token, 65);
	copy[63] = copy[63] == 'a' ? 'b' : 'a';
	ok(!server_sessions_login(s, copy, sid), "one character off is refused");
	memcpy(copy, token, 65);
	ok(server_sessions_login(s, copy, sid), "the token signs in");
	ok(!server_sessions_login(s, copy, other), "once");
	ok(server_sessions_check(s, sid, csrf), "the session is live");
	is_int((long long)strlen(csrf), 64, "with a CSRF token");
	ok(strcmp(csrf, sid) && strcmp(csrf, token), "unlike the session id and the token");
	ok(!server_sessions_check(s, NULL, other), "no cookie, no session");
	ok(!server_sessions_check(s, "", other), "an empty cookie, no session");
	sid[0] = sid[0] == 'a' ? 'b' : 'a';
	ok(!server_sessions_check(s, sid, other), "a forged id, no session");
	ok(server_secret_equal("abc", "abc") && !server_secret_equal("abc", "abd") &&
		   !server_secret_equal("abc", "abcd") && !server_secret_equal("", ""),
	   "secret comparison");
	server_sessions_free(s);
	server_sessions *t = server_sessions_new();
	ok(strcmp(server_sessions_token(t), copy), "each server its own token");
	server_sessions_free(t);
	return tap_done();
}
