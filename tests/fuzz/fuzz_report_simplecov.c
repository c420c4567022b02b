/* tests/fuzz/fuzz_report_simplecov.c - libFuzzer entry for the SIMPLECOV report parser
 * (see tests/fuzz/fuzz_report.h). */
#define FUZZ_REPORT_FORMAT SPEC_REPORT_SIMPLECOV
#include "tests/fuzz/fuzz_report.h"
