# codebuild-local - plain Makefile (see ../shared/design.md "Build and test")
CC ?= cc
PKGS := yaml-0.1 libgit2 openssl jansson libxml-2.0 libseccomp zlib sqlite3
# loaded with dlopen when an image is pulled or unpacked, or `serve` starts
# (util/dl.c, from util/curl.c, images/dl.c and server/dl.c): not a cost of every start of the program
DL_PKGS := libarchive libcurl libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(DL_PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# the unit tests use them directly (to build archives, as HTTP clients)
DL_LIBS := $(shell pkg-config --libs $(DL_PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wvla -Wwrite-strings -fno-common -Wno-missing-field-initializers
OPT ?= -O2 -g
CFLAGS ?=
CFLAGS += -std=gnu17 $(OPT) $(WARN) -D_FORTIFY_SOURCE=2 -D_GNU_SOURCE -I. $(PKG_CFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread

ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
OPT := -O1 -g
BUILD ?= build-san
endif
BUILD ?= build

MODULES := util spec source sandbox runner store artifacts cache images server remote
LIB_SRC := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
# the request validator's tables, generated from the service models
# (store/validate.c, scripts/gen-model.py)
MODEL_JSON := store/model/codebuild.json store/model/logs.json
MODEL_C := $(BUILD)/gen/store_model.c
MODEL_OBJ := $(BUILD)/obj/gen/store_model.o
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(MODEL_OBJ)
CLI_SRC := $(wildcard cli/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
LIB := $(BUILD)/libcodebuild-local.a
BIN := $(BUILD)/codebuild-local

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

PREFIX ?= /usr/local

.PHONY: all deps demo test unit e2e bench fuzz install clean check-deps

all: $(BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/tap.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) $(DL_LIBS)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

$(MODEL_C): scripts/gen-model.py $(MODEL_JSON)
	@mkdir -p $(dir $@)
	python3 scripts/gen-model.py c $@ $(MODEL_JSON)
$(MODEL_OBJ): $(MODEL_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# the catalog is embedded with .incbin, which -MMD does not see
$(BUILD)/obj/images/catalog.o: images/catalog.json
$(BUILD)/obj/server/dash_html.o: web/dash.css web/dash.js
$(BUILD)/obj/runner/prices.o: runner/prices.json

# The sandbox's init is a small program of its own (sandbox/initexe/main.c
# with the util/ and sandbox/ objects it needs and libseccomp, nothing else),
# embedded in the library by sandbox/initbin.c's .incbin and exec'd from a
# sealed memfd (sandbox/sandbox.c): it starts in a third of the time this
# program with its thirty libraries does.
INIT_ELF := $(BUILD)/sandbox-init
INIT_BIN_OBJ := $(BUILD)/obj/sandbox/initbin.o
INIT_MAIN_OBJ := $(BUILD)/obj/sandbox/initexe/main.o
INIT_LIB := $(BUILD)/libcodebuild-local-init.a
$(INIT_LIB): $(filter-out $(INIT_BIN_OBJ),$(filter $(BUILD)/obj/util/% $(BUILD)/obj/sandbox/%,$(LIB_OBJ)))
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^
$(INIT_ELF): $(INIT_MAIN_OBJ) $(INIT_LIB)
	$(CC) $(LDFLAGS) -s -Wl,--as-needed -o $@ $(INIT_MAIN_OBJ) $(INIT_LIB) $(PKG_LIBS) -lpthread
$(INIT_BIN_OBJ): sandbox/initbin.c $(INIT_ELF)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSANDBOX_INIT_ELF='"$(INIT_ELF)"' -MMD -MP -c $< -o $@
-include $(INIT_MAIN_OBJ:.o=.d)

# Installs build and test dependencies when anything is missing.
check-deps:
	@bash scripts/install-deps.sh

deps:
	bash scripts/install-deps.sh

test: check-deps
	$(MAKE) $(BIN) $(UNIT_BIN)
	BUILD=$(BUILD) bash scripts/run-tests.sh

unit: $(UNIT_BIN)
	BUILD=$(BUILD) bash scripts/run-tests.sh unit

e2e: $(BIN)
	BUILD=$(BUILD) bash scripts/run-tests.sh e2e

demo: check-deps
	$(MAKE) $(BIN)
	bash scripts/demo.sh $(BIN)

bench: $(BIN)
	bash bench/overhead.sh $(BIN)
	bash bench/sandbox.sh $(BIN)
	bash bench/snapshot.sh $(BIN)
	bash bench/clone.sh $(BIN)
	bash bench/artifacts.sh $(BIN)
	bash bench/reports.sh
	bash bench/images.sh $(BIN)
	bash bench/api.sh $(BIN)
	bash bench/logs.sh $(BIN)
	bash bench/validate.sh
	bash bench/iterate.sh $(BIN)
	bash bench/iterate-user.sh $(BIN)
	BENCH_BIN=$(BIN) bash bench/cache.sh
	bash bench/metrics.sh $(BIN)
	bash bench/rootless.sh $(BIN)
	bash bench/batch.sh $(BIN)
	bash bench/dashboard.sh $(BIN)
	bash bench/autodiscover.sh $(BIN)

# `make fuzz` builds every tests/fuzz/fuzz_*.c target and runs FUZZ_TARGETS
# (default fuzz_spec; "all" = every target; or a list such as
# "fuzz_report_junit fuzz_report_trx"), each for FUZZ_TIME seconds, one after
# the other; it fails when any of them finds something.
FUZZ_BUILD := build-fuzz
FUZZ_TIME ?= 60
FUZZ_ALL := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= fuzz_spec
FUZZ_RUN := $(if $(filter all,$(FUZZ_TARGETS)),$(FUZZ_ALL),$(FUZZ_TARGETS))
fuzz:
	$(MAKE) CC="clang -fsanitize=fuzzer-no-link,address,undefined" WARN="$(WARN) -Wno-error" \
		BUILD=$(FUZZ_BUILD) $(FUZZ_BUILD)/libcodebuild-local.a
	set -e; for t in $(FUZZ_ALL); do \
		clang -std=gnu17 -g -O1 -I. -D_GNU_SOURCE $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
			-o $(FUZZ_BUILD)/$$t tests/fuzz/$$t.c $(FUZZ_BUILD)/libcodebuild-local.a $(LDLIBS) $(DL_LIBS); \
	done
	rc=0; for t in $(FUZZ_RUN); do \
		bash scripts/fuzz.sh $(FUZZ_BUILD)/$$t $(FUZZ_TIME) || rc=1; \
	done; exit $$rc

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/codebuild-local

clean:
	rm -rf build build-san build-fuzz
