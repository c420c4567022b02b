/* bench/report_bench.c - times artifacts_report_parse_file on one report
 * file (built and run by bench/reports.sh; not part of the library).
 *
 * Usage: report_bench FORMAT FILE
 * Prints one line of key=value pairs: total cases, retained cases, seconds,
 * cases per second, peak RSS (getrusage, KiB) and the summary line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "artifacts/report.h"
#include "util/buf.h"
#include "util/error.h"

#include "util/banned.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s FORMAT FILE\n", argv[0]);
		return 2;
	}
	int f = 0;
	while (f <= (int)SPEC_REPORT_SIMPLECOV && strcasecmp(spec_report_format_name((spec_report_format)f), argv[1]))
		f++;
	if (f > (int)SPEC_REPORT_SIMPLECOV) {
		fprintf(stderr, "%s: unknown format %s\n", argv[0], argv[1]);
		return 2;
	}
	spec_report_format fmt = (spec_report_format)f;
	artifacts_report rep;
	cbl_error *err = NULL;
	artifacts_report_init(&rep, fmt);
	double t0 = now();
	int rc = artifacts_report_parse_file(&rep, fmt, argv[2], NULL, &err);
	/* what the runner does next: the stored shapes */
	json_t *r = artifacts_report_to_json(&rep, NULL);
	json_t *cases = artifacts_report_test_cases_json(&rep, NULL);
	double secs = now() - t0;
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", argv[0], err ? err->msg : "parse failed");
		return 1;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	cbl_buf line = CBL_BUF_INIT;
	artifacts_report_summary_line(&rep, &line);
	printf("total=%zu retained=%zu testcases_json=%zu truncated=%s seconds=%.3f cases_per_sec=%.0f "
	       "peak_rss_kib=%ld summary=\"%s\"\n",
	       rep.test.total, rep.ncases, json_array_size(cases), artifacts_report_truncated(&rep) ? "true" : "false",
	       secs, secs > 0 ? (double)rep.test.total / secs : 0.0, ru.ru_maxrss, cbl_buf_cstr(&line));
	cbl_buf_release(&line);
	json_decref(r);
	json_decref(cases);
	artifacts_report_release(&rep);
	return 0;
}
