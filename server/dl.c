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

server_curl_fns server_curl_table;

static const char *const curl_sonames[] = {"libcurl.so.4"};

static const cbl_dl_sym curl_syms[] = {
#define SYM(f) {#f, (void **)&server_curl_table.f},
	SERVER_CURL_FUNCTIONS(SYM)
#undef SYM
};

static cbl_dl_lib curl_lib = CBL_DL_LIB_INIT(curl_sonames, curl_syms);

int server_curl_load(cbl_error **err) { return cbl_dl_load(&curl_lib, err); }
