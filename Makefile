# SPDX-License-Identifier: ISC
# consentd: hand-written Makefile. `make run` and `make test` install what
# is missing (tools/deps.sh), build and run. Each kind of build has its own
# directory, so switching never mixes objects: plain in build/,
# SANITIZE=address,undefined in build/san, DEBUG=1 (no optimisation) in
# build/debug, both together in build/san-debug. `make fuzz` builds the
# libFuzzer targets with clang into build/fuzz and runs them.

CC	?= cc
PKGS	:= libsodium sqlcipher libmicrohttpd jansson libidn2 libcurl simdjson libpq
# GnuTLS: the server's certificate is handed to libmicrohttpd per handshake.
PKGS	+= gnutls
# Nettle (GnuTLS's own hashes): SHA-256 with the CPU's SHA instructions for
# the audit log's Merkle tree.
PKGS	+= nettle

ifeq ($(SANITIZE),)
ifeq ($(DEBUG),1)
BUILD	:= build/debug
else
BUILD	:= build
endif
else
ifeq ($(DEBUG),1)
BUILD	:= build/san-debug
else
BUILD	:= build/san
endif
endif

BIN	:= $(BUILD)/consentd
LIB	:= $(BUILD)/libconsentd.a

SRCS	:= \
	src/util/mem.c \
	src/util/par.c \
	src/util/worker.c \
	src/util/util.c \
	src/util/intern.c \
	src/util/metrics.c \
	src/crypto/keys.c \
	src/store/store.c \
	src/store/exec.c \
	src/store/exec_pg.c \
	src/store/backup.c \
	src/store/erasures.c \
	src/store/chain.c \
	src/store/optouts.c \
	src/store/migrate.c \
	src/store/tokens.c \
	src/store/decisions.c \
	src/core/policy.c \
	src/core/policy_field.c \
	src/core/policy_schema.c \
	src/core/scope.c \
	src/core/token.c \
	src/core/reports.c \
	src/core/identifier.c \
	src/core/subject.c \
	src/core/decision.c \
	src/core/deadline.c \
	src/core/dsr.c \
	src/core/dsr_steps.c \
	src/core/dsr_links.c \
	src/core/dsr_package.c \
	src/core/package.c \
	src/core/package_csv.c \
	src/core/export.c \
	src/core/export_verify.c \
	src/core/dsr_systems.c \
	src/core/outbox.c \
	src/core/outbox_queue.c \
	src/core/systems.c \
	src/outbox/deliver.c \
	src/outbox/senders.c \
	src/core/ctx.c \
	src/core/ledger.c \
	src/core/consent.c \
	src/core/prefs.c \
	src/core/suppression.c \
	src/core/import_map.c \
	src/core/import.c \
	src/core/changes.c \
	src/core/feed.c \
	src/core/rights.c \
	src/core/optout.c \
	src/core/merge.c \
	src/core/upgrade.c \
	src/core/notice.c \
	src/core/shopper.c \
	src/core/console.c \
	src/core/receipt.c \
	src/core/receipt_verify.c \
	src/audit/merkle.c \
	src/audit/note.c \
	src/audit/log.c \
	src/audit/verify.c \
	src/audit/canon.c \
	src/audit/state.c \
	src/audit/state_cmp.c \
	src/audit/checkpointer.c \
	src/audit/sign.c \
	src/crypto/aead.c \
	src/crypto/encode.c \
	src/crypto/stream.c \
	src/store/audit.c \
	src/store/subjects.c \
	src/store/consents.c \
	src/store/suppressions.c \
	src/store/requests.c \
	src/store/packages.c \
	src/store/notices.c \
	src/store/shopper.c \
	src/store/console.c \
	src/store/outbox.c \
	src/store/changes.c \
	src/store/retention.c \
	src/core/retention.c \
	src/core/retention_evidence.c \
	src/app/app.c \
	src/http/router.c \
	src/http/request.c \
	src/http/server.c \
	src/http/auth.c \
	src/http/ndjson.c \
	src/http/writer.c \
	src/http/watch.c \
	src/http/ratelimit.c \
	src/http/tls.c \
	src/http/metrics.c \
	src/api/routes.c \
	src/api/health.c \
	src/api/policy.c \
	src/api/tokens.c \
	src/api/changes.c \
	src/api/audit.c \
	src/api/subjects.c \
	src/api/consents.c \
	src/api/receipts.c \
	src/api/check.c \
	src/api/preferences.c \
	src/api/suppressions.c \
	src/api/reports.c \
	src/api/dsr.c \
	src/api/dsr_package.c \
	src/api/outbox.c \
	src/api/shopper.c \
	src/api/me.c \
	src/api/console.c \
	src/api/web.c \
	src/api/page.c \
	src/api/page_util.c \
	src/api/page_form.c \
	src/api/common.c \
	src/api/metrics.c \
	src/cli/common.c \
	src/cli/init.c \
	src/cli/serve.c \
	src/cli/token.c \
	src/cli/migrate.c \
	src/cli/routes.c \
	src/cli/audit.c \
	src/cli/receipt.c \
	src/cli/witness.c \
	src/cli/dsr.c \
	src/cli/dsr_admin.c \
	src/cli/outbox.c \
	src/cli/retention.c \
	src/cli/backup.c \
	src/cli/optouts.c \
	src/cli/link.c \
	src/cli/import.c \
	src/api/imports.c \
	src/cli/keys.c \
	src/crypto/rotate.c \
	src/store/rotate.c \
	src/audit/vkeys.c
# The libphonenumber shim (see src/core/phone.h) and the simdjson fast
# path of audit verify (src/audit/entry_fields.h), the only C++.
CXXSRCS	:= src/core/phone.cc \
	src/audit/entry_fast.cc

GEN	:= $(BUILD)/gen/migrations.c
OBJS	:= $(SRCS:%.c=$(BUILD)/%.o) $(CXXSRCS:%.cc=$(BUILD)/%.o) $(BUILD)/gen/migrations.o \
	$(BUILD)/gen/templates.o
OBJS	+= $(BUILD)/gen/mappings.o
MAIN	:= $(BUILD)/src/main.o

UNIT_TESTS := merkle policy notice router store crypto util audit identifier decision request core dsr \
	outbox \
	console \
	consent_model golden package \
	entry_fast import
UNIT_TESTS += rotate
UNIT_TESTS += retention
UNIT_BINS  := $(UNIT_TESTS:%=$(BUILD)/tests/test_%)

# The erasure ledger and the store's backup (src/store/erasures.c, backup.c).
UNIT_BINS  += $(BUILD)/tests/test_erasures
# The opt-out ledger (src/store/optouts.c).
UNIT_BINS  += $(BUILD)/tests/test_optouts

WARN	:= -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wmissing-declarations -Wpointer-arith \
	   -Wcast-qual -Wwrite-strings -Wsign-compare -Wundef
# The same for C++, less the two C-only warnings.
CXXWARN	:= $(filter-out -Wstrict-prototypes -Wmissing-prototypes,$(WARN))
HARDEN	:= -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
ifeq ($(DEBUG),1)
OPT	:= -O0 -g
else
OPT	:= -O2 -g
endif

# Each compile also writes a .d file beside its output listing the headers
# it read (-MP: with an empty rule for each, so a deleted header is no
# error), included at the end of this file.
DEPFLAGS := -MMD -MP
# Recursively expanded, so pkg-config runs after `deps` has installed it.
# -fno-common: a tentative definition in two files is a link error, not
# one silently shared variable.
CFLAGS	 = -std=gnu11 $(OPT) $(WARN) -fno-common $(HARDEN) $(DEPFLAGS) -Iinclude \
	   -pthread $(shell pkg-config --cflags $(PKGS))
CXXFLAGS = -std=gnu++17 $(OPT) $(CXXWARN) $(HARDEN) $(DEPFLAGS) -Iinclude -pthread \
	   $(shell pkg-config --cflags simdjson)
LDFLAGS	 = -pie -Wl,-z,relro,-z,now -pthread
# libunistring and libphonenumber ship no pkg-config file; the shim needs
# the C++ runtime.
LDLIBS	 = $(shell pkg-config --libs $(PKGS)) -lunistring -lphonenumber -lstdc++
# libcsv (the import's CSV reader) ships no pkg-config file either.
LDLIBS	+= -lcsv
TEST_LIBS = $(shell pkg-config --libs cmocka)

ifneq ($(SANITIZE),)
CFLAGS	+= -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
CXXFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS	+= -fsanitize=$(SANITIZE)
export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0:exitcode=23
export UBSAN_OPTIONS := halt_on_error=1:print_stacktrace=1
# The consent-model property test runs 100,000 steps on the plain build;
# under the sanitizers (about 4x slower) a quarter of that covers the code.
export CONSENTD_MODEL_STEPS ?= 25000
endif

.PHONY: all deps deps-test deps-bench deps-fuzz run test check layers unit golden http http-pg web pg test-ha \
	memcheck soak \
	fuzz fuzz-seeds bench bench-quick clean

all: $(BIN)

deps:
	@sh tools/deps.sh build

deps-test:
	@sh tools/deps.sh test

deps-bench:
	@sh tools/deps.sh bench

deps-fuzz:
	@sh tools/deps.sh fuzz

$(BIN): $(MAIN) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(MAIN) $(LIB) $(LDLIBS)

$(LIB): $(OBJS)
	rm -f $@
	ar rcs $@ $(OBJS)

$(BUILD)/%.o: %.c $(BUILD)/%.d
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<
	@touch $@

$(BUILD)/%.o: %.cc $(BUILD)/%.d
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c -o $@ $<
	@touch $@

$(GEN): migrations $(wildcard migrations/*.sql) migrations-pg $(wildcard migrations-pg/*.sql) \
    tools/embed-migrations.sh
	@mkdir -p $(dir $@)
	sh tools/embed-migrations.sh migrations cm_migrations_builtin \
	    migrations-pg cm_migrations_builtin_pg > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/migrations.o: $(GEN)
	$(CC) $(CFLAGS) -c -o $@ $<

# The message templates of web/templates/, carried by the binary.
TGEN	:= $(BUILD)/gen/templates.c
$(TGEN): web/templates $(wildcard web/templates/*.txt) tools/embed-files.sh
	@mkdir -p $(dir $@)
	sh tools/embed-files.sh web/templates txt consentd/outbox.h cm_template cm_templates_builtin > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/templates.o: $(TGEN)
	$(CC) $(CFLAGS) -c -o $@ $<

# The import mappings of share/mappings/, carried by the binary.
MGEN	:= $(BUILD)/gen/mappings.c
$(MGEN): share/mappings $(wildcard share/mappings/*.json) tools/embed-files.sh
	@mkdir -p $(dir $@)
	sh tools/embed-files.sh share/mappings json consentd/import.h cm_import_builtin cm_import_builtins > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/mappings.o: $(MGEN)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/tests/test_%.d $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) $(TEST_LIBS)

$(BUILD)/tests/test_store_engines: tests/pg/test_store_engines.c \
    $(BUILD)/tests/test_store_engines.d $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) $(TEST_LIBS)

$(BUILD)/tests/dbtool: tests/tools/dbtool.c $(BUILD)/tests/dbtool.d $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/gen: bench/gen.c $(BUILD)/bench/gen.d $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/hello: bench/hello.c $(BUILD)/bench/hello.d
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# consentd with store fault injection, for the tests that show a failing
# store answers 503 and never allow (see store_fault in src/store/store.c).
FAULT_OBJS := $(SRCS:%.c=$(BUILD)/faults/%.o) $(CXXSRCS:%.cc=$(BUILD)/%.o) \
	$(BUILD)/faults/gen/migrations.o $(BUILD)/faults/gen/templates.o
FAULT_OBJS += $(BUILD)/gen/mappings.o

$(BUILD)/faults/%.o: %.c $(BUILD)/faults/%.d
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DCM_FAULT_INJECTION -c -o $@ $<
	@touch $@

$(BUILD)/faults/gen/migrations.o: $(GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/faults/gen/templates.o: $(TGEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/consentd-faults: $(BUILD)/faults/src/main.o $(FAULT_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The conformance checker, built offline from Debian's golang-golang-x-mod-dev.
$(BUILD)/tests/tlogcheck: tests/conformance/tlogcheck.go
	@mkdir -p $(dir $@)
	cd tests/conformance && GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off \
	    GOCACHE=$(abspath $(BUILD))/gocache go build -o $(abspath $@) tlogcheck.go

# ---- the README's two commands -------------------------------------------

# `make run LISTEN=127.0.0.1:9090` serves on another address.
LISTEN	?= 127.0.0.1:8080

run: deps
	@$(MAKE) --no-print-directory $(BIN)
	@test -d var || $(BIN) init --data var
	@echo "demo token (all scopes; shown once, replaced on every 'make run'):"
	@$(BIN) token create --data var --name demo --replace \
	    --scopes consent:check,consent:read,consent:write,subjects:read,subjects:write,dsr:admin,audit:read,admin
	@echo "a demo shopper's preference-centre link (open it in a browser once serving):"
	@$(BIN) link --data var --policy policy --identifier email:demo@example.com --create \
	    $(if $(CONSENTD_PUBLIC_URL),,--public-url http://127.0.0.1:$(lastword $(subst :, ,$(LISTEN))))
	@echo "serving on http://$(LISTEN)  (try: curl http://$(LISTEN)/healthz)"
	$(BIN) serve --data var --policy policy --listen $(LISTEN)

test: deps-test
	@$(MAKE) --no-print-directory check

# ---- what `make test` runs -----------------------------------------------

check: layers unit http http-pg web pg fuzz-seeds
ifeq ($(SANITIZE),)
check: memcheck
endif
check: unit-check

# The layering rules: crypto and store include nothing from above, http no
# store header, and no two files of src/core/ call each other; and every
# source file names its licence; and the benchmark's scripts parse (it runs
# only under `make bench`, so a broken merge there would go unseen).
layers: $(LIB)
	@sh tools/check-layers.sh $(BUILD) $(CC) -Iinclude $(shell pkg-config --cflags $(PKGS))
	@sh tools/check-spdx.sh
	@for f in bench/*.mjs; do node --check $$f || exit 1; done

# The systemd unit dist/consentd.service: its hardening, and `systemd-analyze
# verify` on a copy whose ExecStart runs the binary just built.
.PHONY: unit-check
unit-check: $(BIN)
	@sh tools/check-unit.sh $(BIN)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# Rewrites the golden files (tests/golden/*.exp) from what the code makes
# now: only for a deliberate change of format; review `git diff` after.
golden: $(BUILD)/tests/test_golden
	CONSENTD_GOLDEN_WRITE=1 $(BUILD)/tests/test_golden

tests/node_modules/.installed: tests/package.json tests/package-lock.json
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The HTTP suite, on SQLCipher stores (http) and on PostgreSQL (http-pg: a
# throwaway cluster the run starts and stops, a database per data directory).
HTTP_ENV = CONSENTD_BIN=$(abspath $(BIN)) CONSENTD_DBTOOL=$(abspath $(BUILD)/tests/dbtool) \
	    CONSENTD_FAULTS_BIN=$(abspath $(BUILD)/tests/consentd-faults) \
	    CONSENTD_TLOGCHECK=$(abspath $(BUILD)/tests/tlogcheck)
HTTP_DEPS = $(BIN) $(BUILD)/tests/dbtool $(BUILD)/tests/tlogcheck $(BUILD)/tests/consentd-faults \
    tests/node_modules/.installed $(BUILD)/bench/gen

http: $(HTTP_DEPS)
	$(HTTP_ENV) node tests/http/run.mjs

http-pg: $(HTTP_DEPS)
	$(HTTP_ENV) node tests/http/run.mjs --pg

# Browser tests: Debian's chromium through playwright-core, against a real
# consentd serve, with axe-core for accessibility (tests/web/).
web: $(BIN) $(BUILD)/tests/dbtool $(BUILD)/tests/consentd-faults tests/node_modules/.installed
	CONSENTD_BIN=$(abspath $(BIN)) CONSENTD_DBTOOL=$(abspath $(BUILD)/tests/dbtool) \
	    CONSENTD_FAULTS_BIN=$(abspath $(BUILD)/tests/consentd-faults) \
	    sh -c 'fail=0; for f in tests/web/*.test.mjs; do node --test "$$f" || fail=1; done; exit $$fail'

# The PostgreSQL schema (migrations-pg/) against SQLite's, and the store's
# executor and SQL on both engines, on a throwaway cluster the tests start
# and stop themselves (tests/pg/cluster.mjs).
pg: $(BIN) $(BUILD)/tests/dbtool $(BUILD)/tests/test_store_engines tests/node_modules/.installed
	CONSENTD_BIN=$(abspath $(BIN)) CONSENTD_DBTOOL=$(abspath $(BUILD)/tests/dbtool) \
	    CONSENTD_ENGINES_TEST=$(abspath $(BUILD)/tests/test_store_engines) \
	    sh -c 'fail=0; for f in tests/pg/*.test.mjs; do node --test "$$f" || fail=1; done; exit $$fail'

# Failover with nothing lost (not part of `make test`): a Patroni cluster
# of three PostgreSQL nodes and etcd on loopback, two consentd nodes, a
# write load, and kill -9 of the primary (tests/ha/failover.mjs).
test-ha: $(BIN)
	@sh tools/deps.sh ha
	CONSENTD_BIN=$(abspath $(BIN)) node tests/ha/failover.mjs

memcheck: $(BIN)
	sh tests/memcheck.sh $(BIN)

# ---- benchmarks (never fail on speed; see bench/run.mjs) ----------------

BENCH_TOOLS = $(BIN) $(BUILD)/bench/gen $(BUILD)/bench/hello $(BUILD)/tests/dbtool

bench: deps-bench
	@$(MAKE) --no-print-directory $(BENCH_TOOLS)
	node bench/run.mjs

bench-quick: deps-bench
	@$(MAKE) --no-print-directory $(BENCH_TOOLS)
	node bench/run.mjs --quick

clean:
	rm -rf build

# ---- fuzzing: libFuzzer targets built with clang ---------------------------
# One target per parser of outside input (tests/fuzz/fuzz_NAME.c, seeds in
# tests/fuzz/corpus/NAME/). The project's sources are built again with
# clang and the fuzzer, address and undefined-behaviour sanitizers into
# build/fuzz, whatever SANITIZE or DEBUG say. `make fuzz` runs each target
# for FUZZ_SECONDS (8 targets x 75 s: 10 minutes), keeping what it finds
# in build/fuzz/corpus/NAME; `make test` runs each over its seeds only.

FUZZ_TARGETS := router percent identifier policy json_body ndjson note witness export
FUZZ_TARGETS += receipt
FUZZ_TARGETS += form
FUZZ_SECONDS ?= 75
FUZZ_CC	 := clang
FUZZ_CXX := clang++
FUZZ_BUILD := build/fuzz
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	    -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=gnu11 -O1 -g $(WARN) -fno-common $(DEPFLAGS) $(FUZZ_SAN) -Iinclude \
	      -pthread $(shell pkg-config --cflags $(PKGS))
FUZZ_CXXFLAGS = -std=gnu++17 -O1 -g $(CXXWARN) $(DEPFLAGS) $(FUZZ_SAN) -Iinclude -pthread
FUZZ_OBJS := $(SRCS:%.c=$(FUZZ_BUILD)/%.o) $(CXXSRCS:%.cc=$(FUZZ_BUILD)/%.o) \
	$(FUZZ_BUILD)/gen/migrations.o $(FUZZ_BUILD)/gen/templates.o
FUZZ_OBJS += $(FUZZ_BUILD)/gen/mappings.o
FUZZ_LIB := $(FUZZ_BUILD)/libconsentd.a
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
# Kept after linking (make would delete them as intermediate files).
.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.o)

$(FUZZ_LIB): $(FUZZ_OBJS)
	rm -f $@
	ar rcs $@ $(FUZZ_OBJS)

$(FUZZ_BUILD)/%.o: %.c $(FUZZ_BUILD)/%.d
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
	@touch $@

$(FUZZ_BUILD)/%.o: %.cc $(FUZZ_BUILD)/%.d
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -c -o $@ $<
	@touch $@

$(FUZZ_BUILD)/gen/migrations.c: migrations $(wildcard migrations/*.sql) migrations-pg \
    $(wildcard migrations-pg/*.sql) tools/embed-migrations.sh
	@mkdir -p $(dir $@)
	sh tools/embed-migrations.sh migrations cm_migrations_builtin \
	    migrations-pg cm_migrations_builtin_pg > $@.tmp && mv $@.tmp $@

$(FUZZ_BUILD)/gen/migrations.o: $(FUZZ_BUILD)/gen/migrations.c
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/gen/templates.c: web/templates $(wildcard web/templates/*.txt) \
    tools/embed-files.sh
	@mkdir -p $(dir $@)
	sh tools/embed-files.sh web/templates txt consentd/outbox.h cm_template cm_templates_builtin > $@.tmp && mv $@.tmp $@

$(FUZZ_BUILD)/gen/templates.o: $(FUZZ_BUILD)/gen/templates.c
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/gen/mappings.c: share/mappings $(wildcard share/mappings/*.json) \
    tools/embed-files.sh
	@mkdir -p $(dir $@)
	sh tools/embed-files.sh share/mappings json consentd/import.h cm_import_builtin cm_import_builtins > $@.tmp && mv $@.tmp $@

$(FUZZ_BUILD)/gen/mappings.o: $(FUZZ_BUILD)/gen/mappings.c
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CXX) -fsanitize=fuzzer,address,undefined -pthread -o $@ $< $(FUZZ_LIB) $(LDLIBS)

fuzz: deps-fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@sh tests/fuzz/run.sh fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The long campaign of the consent model (tests/unit/test_consent_model.c):
# 100,000 random sequences of 40 writes each, every check on every
# identifier compared with the reference model after every write, and with
# the decision rows turned off on one step in eight. SOAK_RUNS runs of the
# test of `make test` (2,500 sequences each, a fresh store and seed each,
# the seed printed to replay one): about 70 minutes here.
SOAK_RUNS ?= 40

soak: deps-test
	@$(MAKE) --no-print-directory $(BUILD)/tests/test_consent_model
	@set -e; i=0; while [ $$i -lt $(SOAK_RUNS) ]; do i=$$((i + 1)); \
		echo "== consent model, run $$i of $(SOAK_RUNS)"; \
		CONSENTD_MODEL_STEPS=100000 $(BUILD)/tests/test_consent_model; done

fuzz-seeds: $(FUZZ_BINS)
	@sh tests/fuzz/run.sh seeds $(FUZZ_BUILD) 0 $(FUZZ_TARGETS)

# ---- header dependencies (written by -MMD -MP) ---------------------------
# Each target built from source also depends on its .d file, and a missing
# .d file is "made" by the empty rule below: so an object built before
# there were .d files (or whose .d was deleted) is rebuilt once, and from
# then on it is rebuilt exactly when a header it includes changes. (Clang
# writes the .d file after the object, hence the `touch` after each
# compile: an object must not look older than its own .d file.)

DEPS := $(sort $(OBJS:.o=.d) $(MAIN:.o=.d) $(FAULT_OBJS:.o=.d) \
	$(BUILD)/faults/src/main.d $(UNIT_BINS:=.d) $(BUILD)/tests/test_store_engines.d \
	$(BUILD)/tests/dbtool.d \
	$(BUILD)/bench/gen.d $(BUILD)/bench/hello.d $(FUZZ_OBJS:.o=.d) \
	$(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.d))
$(DEPS):
-include $(DEPS)
