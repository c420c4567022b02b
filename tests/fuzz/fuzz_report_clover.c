/* tests/fuzz/fuzz_report_clover.c - libFuzzer entry for the CLOVERXML report parser
 * (see tests/fuzz/fuzz_report.h). */
#define FUZZ_REPORT_FORMAT SPEC_REPORT_CLOVERXML
#include "tests/fuzz/fuzz_report.h"
