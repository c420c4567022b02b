/* images/dl.c - see images/dl.h; the loading is util/dl.c's. */
#define IMAGES_DL_LOADER
#include "images/dl.h"
#include "util/dl.h"

#include "util/banned.h"

images_dl_fns images_dl_table;

static const char *const sonames[] = {"libarchive.so.13"};

static const cbl_dl_sym syms[] = {
#define SYM(f) {#f, (void **)&images_dl_table.f},
	IMAGES_DL_FUNCTIONS(SYM)
#undef SYM
};

static cbl_dl_lib lib = CBL_DL_LIB_INIT(sonames, syms);

int images_dl_load(cbl_error **err) { return cbl_dl_load(&lib, err); }
