/* tests/fuzz/fuzz_report_trx.c - libFuzzer entry for the VISUALSTUDIOTRX report parser
 * (see tests/fuzz/fuzz_report.h). */
#define FUZZ_REPORT_FORMAT SPEC_REPORT_VISUALSTUDIOTRX
#include "tests/fuzz/fuzz_report.h"
