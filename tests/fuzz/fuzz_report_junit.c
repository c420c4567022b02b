/* tests/fuzz/fuzz_report_junit.c - libFuzzer entry for the JUNITXML report parser
 * (see tests/fuzz/fuzz_report.h). */
#define FUZZ_REPORT_FORMAT SPEC_REPORT_JUNITXML
#include "tests/fuzz/fuzz_report.h"
