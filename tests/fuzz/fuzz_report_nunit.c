/* tests/fuzz/fuzz_report_nunit.c - libFuzzer entry for the NUNITXML report parser
 * (see tests/fuzz/fuzz_report.h). */
#define FUZZ_REPORT_FORMAT SPEC_REPORT_NUNITXML
#include "tests/fuzz/fuzz_report.h"
