/* tests/fuzz/fuzz_report_jacoco.c - libFuzzer entry for the JACOCOXML report parser
 * (see tests/fuzz/fuzz_report.h). */
#define FUZZ_REPORT_FORMAT SPEC_REPORT_JACOCOXML
#include "tests/fuzz/fuzz_report.h"
