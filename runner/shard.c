/* runner/shard.c - which test files a build-fanout shard runs
 * (codebuild-tests-run, cli/cmd_tests_run.c).
 *
 * equal-distribution: the files sorted by name, cut into `count` chunks
 * whose sizes differ by at most one, shard k gets the k-th chunk (as the
 * service documents it: alphabetical, chunk-based, not stable when files
 * come and go).  stability: rendezvous hashing -- each file goes to the
 * shard with the highest SHA-256 of "<file>\n<shard>", so adding or
 * removing a file never moves another one (the service documents
 * "consistent hashing" without its function: the assignment is ours). */
#include "runner/batch.h"
#include "util/alloc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static int cmp_idx(const void *a, const void *b, void *payload)
{
	const char *const *files = payload;
	return strcmp(files[*(const size_t *)a], files[*(const size_t *)b]);
}

static unsigned long long score(const char *file, int shard)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char *in = cbl_xasprintf("%s\n%d", file, shard);
	EVP_Digest(in, strlen(in), md, &len, EVP_sha256(), NULL);
	free(in);
	unsigned long long v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | md[i];
	return v;
}

size_t runner_shard_select(const char *const *files, size_t n, int shard, int count, runner_shard_strategy s,
			   size_t *out)
{
	if (count < 1 || shard < 1 || shard > count)
		return 0;
	size_t *order = cbl_xreallocarray(NULL, n ? n : 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(size_t), cmp_idx, (void *)files);
	size_t k = 0;
	if (s == RUNNER_SHARD_EQUAL) {
		size_t from = n * (size_t)(shard - 1) / (size_t)count, to = n * (size_t)shard / (size_t)count;
		for (size_t i = from; i < to; i++)
			out[k++] = order[i];
	} else {
		for (size_t i = 0; i < n; i++) {
			int best = 1;
			unsigned long long top = score(files[order[i]], 1);
			for (int c = 2; c <= count; c++) {
				unsigned long long v = score(files[order[i]], c);
				if (v > top) {
					top = v;
					best = c;
				}
			}
			if (best == shard)
				out[k++] = order[i];
		}
	}
	free(order);
	return k;
}
