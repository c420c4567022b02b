/* store/outbox.c - reading the outbox (store/events.c writes it): the
 * head of each destination's queue, and its end (delivered, or to be
 * retried later). */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

int store_outbox_heads(const char *home, int64_t now_ms, store_outbox_item **out, size_t *n, cbl_error **err)
{
	store_db *h = NULL;
	*out = NULL;
	*n = 0;
	int rc = store_db_acquire(home, &h, err);
	if (rc)
		return rc;
	sqlite3_stmt *st = NULL;
	rc = store_prepare(h->db,
			   "SELECT seq, dest, body, attempts FROM event_outbox WHERE seq IN"
			   " (SELECT min(seq) FROM event_outbox GROUP BY dest) AND next_ms <= ?1 ORDER BY seq",
			   &st, err);
	if (!rc)
		sqlite3_bind_int64(st, 1, now_ms);
	size_t cap = 0;
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 4;
			*out = cbl_xreallocarray(*out, cap, sizeof(**out));
		}
		store_outbox_item *it = &(*out)[(*n)++];
		it->seq = sqlite3_column_int64(st, 0);
		it->dest = cbl_xstrdup((const char *)sqlite3_column_text(st, 1));
		it->body = cbl_xstrdup((const char *)sqlite3_column_text(st, 2));
		it->attempts = sqlite3_column_int(st, 3);
	}
	sqlite3_finalize(st);
	store_db_release(h);
	return rc;
}

void store_outbox_items_free(store_outbox_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].dest);
		free(items[i].body);
	}
	free(items);
}

int store_outbox_done(const char *home, int64_t seq, int64_t retry_at_ms, cbl_error **err)
{
	store_db *h = NULL;
	int rc = store_db_acquire(home, &h, err);
	if (rc)
		return rc;
	sqlite3_stmt *st = NULL;
	rc = store_prepare(h->db,
			   retry_at_ms ? "UPDATE event_outbox SET attempts = attempts + 1, next_ms = ?2 WHERE seq = ?1"
				       : "DELETE FROM event_outbox WHERE seq = ?1",
			   &st, err);
	if (!rc) {
		sqlite3_bind_int64(st, 1, seq);
		if (retry_at_ms)
			sqlite3_bind_int64(st, 2, retry_at_ms);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = store_sql_error(h->db, err, "cannot update the outbox");
	}
	sqlite3_finalize(st);
	store_db_release(h);
	return rc;
}

int store_events_enable(const char *home, cbl_error **err)
{
	store_db *h = NULL;
	int rc = store_db_acquire(home, &h, err);
	if (rc)
		return rc;
	rc = store_exec(h->db, "INSERT OR REPLACE INTO settings(key, value) VALUES('events', '1')", err);
	store_db_release(h);
	return rc;
}
