/* tests/fuzz/fuzz_report_nunit3.c - libFuzzer entry for the NUNIT3XML report parser
 * (see tests/fuzz/fuzz_report.h). */
#define FUZZ_REPORT_FORMAT SPEC_REPORT_NUNIT3XML
#include "tests/fuzz/fuzz_report.h"
