/* server/dl.c - see server/dl.h; the loading is util/dl.c's. */
#define SERVER_DL_LOADER
#include "server/dl.h"
#include "util/dl.h"

#include "util/banned.h"

server_dl_fns server_dl_table;

static const char *const sonames[] = {"libmicrohttpd.so.12"};

static const cbl_dl_sym syms[] = {
#define SYM(f) {#f, (void **)&server_dl_table.f},
	SERVER_DL_FUNCTIONS(SYM)
#undef SYM
};

static cbl_dl_lib lib = CBL_DL_LIB_INIT(sonames, syms);

int server_dl_load(cbl_error **err) { return cbl_dl_load(&lib, err); }
