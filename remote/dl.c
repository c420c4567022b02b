/* remote/dl.c - see remote/dl.h; the loading is util/dl.c's. */
#define REMOTE_DL_LOADER
#include "remote/dl.h"
#include "util/dl.h"

#include "util/banned.h"

remote_dl_fns remote_dl_table;

static const char *const sonames[] = {"libcurl.so.4"};

static const cbl_dl_sym syms[] = {
#define SYM(f) {#f, (void **)&remote_dl_table.f},
	REMOTE_DL_FUNCTIONS(SYM)
#undef SYM
};

static cbl_dl_lib lib = CBL_DL_LIB_INIT(sonames, syms);

int remote_dl_load(cbl_error **err) { return cbl_dl_load(&lib, err); }
