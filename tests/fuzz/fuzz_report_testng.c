/* tests/fuzz/fuzz_report_testng.c - libFuzzer entry for the TESTNGXML report parser
 * (see tests/fuzz/fuzz_report.h). */
#define FUZZ_REPORT_FORMAT SPEC_REPORT_TESTNGXML
#include "tests/fuzz/fuzz_report.h"
