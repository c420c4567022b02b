/* tests/fuzz/fuzz_report_cucumber.c - libFuzzer entry for the CUCUMBERJSON report parser
 * (see tests/fuzz/fuzz_report.h). */
#define FUZZ_REPORT_FORMAT SPEC_REPORT_CUCUMBERJSON
#include "tests/fuzz/fuzz_report.h"
