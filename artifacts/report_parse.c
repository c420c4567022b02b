/* artifacts/report_parse.c - one report document: the format's parser
 * chosen, the document parsed into a scratch report, then merged.  The
 * parsers (report_junit.c, report_dotnet.c, report_coverage.c,
 * report_cucumber.c) use report.c's helpers; this file sits above both. */
#include "artifacts/report_internal.h"
#include "util/fs.h"
#include "util/safeopen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/banned.h"

typedef int (*xml_parser_fn)(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err);

static xml_parser_fn xml_parser_for(spec_report_format fmt)
{
	switch (fmt) {
	case SPEC_REPORT_JUNITXML:
		return artifacts_report_parse_junit;
	case SPEC_REPORT_TESTNGXML:
		return artifacts_report_parse_testng;
	case SPEC_REPORT_VISUALSTUDIOTRX:
		return artifacts_report_parse_trx;
	case SPEC_REPORT_NUNITXML:
		return artifacts_report_parse_nunit2;
	case SPEC_REPORT_NUNIT3XML:
		return artifacts_report_parse_nunit3;
	case SPEC_REPORT_CLOVERXML:
		return artifacts_report_parse_clover;
	case SPEC_REPORT_COBERTURAXML:
		return artifacts_report_parse_cobertura;
	case SPEC_REPORT_JACOCOXML:
		return artifacts_report_parse_jacoco;
	case SPEC_REPORT_CUCUMBERJSON:
	case SPEC_REPORT_SIMPLECOV:
		break;
	}
	return NULL;
}

static bool is_json_format(spec_report_format fmt)
{
	return fmt == SPEC_REPORT_CUCUMBERJSON || fmt == SPEC_REPORT_SIMPLECOV;
}

static int check_type(const artifacts_report *rep, spec_report_format fmt, const char *display, cbl_error **err)
{
	artifacts_report_type t =
		spec_report_format_is_coverage(fmt) ? ARTIFACTS_REPORT_CODE_COVERAGE : ARTIFACTS_REPORT_TEST;
	if (t != rep->type)
		return cbl_error_set(err, CBL_EINVAL, "%s: %s is a %s format but the report is a %s report",
				     display, spec_report_format_name(fmt),
				     t == ARTIFACTS_REPORT_TEST ? "test" : "code coverage",
				     rep->type == ARTIFACTS_REPORT_TEST ? "test" : "code coverage");
	if (!is_json_format(fmt) && !xml_parser_for(fmt))
		return cbl_error_set(err, CBL_EINVAL, "%s: unknown report format %d", display, (int)fmt);
	return 0;
}

/* Parses one document into a scratch report and merges it on success.  XML
 * formats stream from in (descriptor or buffer); the JSON ones need the
 * whole document in in->data. */
int artifacts_report_parse_input(artifacts_report *rep, spec_report_format fmt, const artifacts_report_input *in,
				 cbl_error **err)
{
	artifacts_report scratch;
	int rc = check_type(rep, fmt, in->display ? in->display : "(report)", err);
	if (rc < 0)
		return rc;

	artifacts_report_init(&scratch, fmt);
	if (fmt == SPEC_REPORT_CUCUMBERJSON)
		rc = artifacts_report_parse_cucumber(&scratch, in->data, in->len, in->display, err);
	else if (fmt == SPEC_REPORT_SIMPLECOV)
		rc = artifacts_report_parse_simplecov(&scratch, in->data, in->len, in->display, err);
	else
		rc = xml_parser_for(fmt)(&scratch, in, err);
	if (rc < 0)
		goto out;
	artifacts_report_merge_parsed(rep, &scratch);
out:
	artifacts_report_release(&scratch);
	return rc;
}

int artifacts_report_parse_buffer(artifacts_report *rep, spec_report_format fmt, const char *data, size_t len,
				  const char *display_path, cbl_error **err)
{
	artifacts_report_input in = {.fd = -1, .data = data ? data : "", .len = data ? len : 0,
				     .display = display_path ? display_path : "(report)"};
	return artifacts_report_parse_input(rep, fmt, &in, err);
}

int artifacts_report_parse_fd(artifacts_report *rep, spec_report_format fmt, int fd, const char *display_path,
			      cbl_error **err)
{
	artifacts_report_input in = {.fd = -1, .display = display_path ? display_path : "(report)"};
	char *data = NULL;
	int rc = check_type(rep, fmt, in.display, err);
	if (rc < 0)
		goto out;
	if (is_json_format(fmt)) {
		/* jansson needs the whole document: the same 64 MiB cap as a file */
		rc = cbl_read_fd(fd, in.display, 0, &data, &in.len, err);
		if (rc < 0)
			goto out;
		in.data = data;
	} else {
		in.fd = fd;
	}
	rc = artifacts_report_parse_input(rep, fmt, &in, err);
out:
	free(data);
	return rc;
}

int artifacts_report_parse_file(artifacts_report *rep, spec_report_format fmt, const char *path,
				const char *display_path, cbl_error **err)
{
	/* O_NONBLOCK and a regular file only: a FIFO must not block the reader */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return cbl_error_set_errno(err, errno == ENOENT ? CBL_ENOENT : CBL_EIO, errno, "cannot open '%s'",
					   path);
	struct stat st;
	int rc;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		rc = cbl_error_set(err, CBL_EIO, "'%s' is not a regular file", path);
	else
		rc = artifacts_report_parse_fd(rep, fmt, fd, display_path ? display_path : path, err);
	close(fd);
	return rc;
}
