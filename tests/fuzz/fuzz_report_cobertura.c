/* tests/fuzz/fuzz_report_cobertura.c - libFuzzer entry for the COBERTURAXML report parser
 * (see tests/fuzz/fuzz_report.h). */
#define FUZZ_REPORT_FORMAT SPEC_REPORT_COBERTURAXML
#include "tests/fuzz/fuzz_report.h"
