# consentd: hand-written Makefile. `make run` and `make test` install what
# is missing (tools/deps.sh), build and run. SANITIZE=address,undefined
# builds into build/san with the sanitizers; DEBUG=1 builds without
# optimisation.

CC	?= cc
PKGS	:= libsodium sqlcipher libmicrohttpd jansson libidn2

ifeq ($(SANITIZE),)
BUILD	:= build
else
BUILD	:= build/san
endif

BIN	:= $(BUILD)/consentd
LIB	:= $(BUILD)/libconsentd.a

SRCS	:= \
	src/util/mem.c \
	src/util/par.c \
	src/util/util.c \
	src/util/intern.c \
	src/crypto/keys.c \
	src/store/store.c \
	src/store/migrate.c \
	src/store/tokens.c \
	src/core/policy.c \
	src/core/scope.c \
	src/core/token.c \
	src/core/reports.c \
	src/core/identifier.c \
	src/core/subject.c \
	src/core/decision.c \
	src/core/ctx.c \
	src/core/ledger.c \
	src/core/consent.c \
	src/core/prefs.c \
	src/core/suppression.c \
	src/core/rights.c \
	src/core/merge.c \
	src/core/upgrade.c \
	src/core/notice.c \
	src/audit/merkle.c \
	src/audit/note.c \
	src/audit/log.c \
	src/audit/verify.c \
	src/audit/state.c \
	src/audit/checkpointer.c \
	src/crypto/aead.c \
	src/store/audit.c \
	src/store/subjects.c \
	src/store/consents.c \
	src/store/notices.c \
	src/app/app.c \
	src/http/router.c \
	src/http/request.c \
	src/http/server.c \
	src/http/auth.c \
	src/http/ndjson.c \
	src/http/writer.c \
	src/http/watch.c \
	src/api/routes.c \
	src/api/health.c \
	src/api/policy.c \
	src/api/tokens.c \
	src/api/audit.c \
	src/api/subjects.c \
	src/api/consents.c \
	src/api/check.c \
	src/api/preferences.c \
	src/api/suppressions.c \
	src/api/reports.c \
	src/api/common.c \
	src/cli/common.c \
	src/cli/init.c \
	src/cli/serve.c \
	src/cli/token.c \
	src/cli/migrate.c \
	src/cli/routes.c \
	src/cli/audit.c \
	src/cli/witness.c
# The libphonenumber shim, the only C++ (see src/core/phone.h).
CXXSRCS	:= src/core/phone.cc

GEN	:= $(BUILD)/gen/migrations.c
OBJS	:= $(SRCS:%.c=$(BUILD)/%.o) $(CXXSRCS:%.cc=$(BUILD)/%.o) $(BUILD)/gen/migrations.o
MAIN	:= $(BUILD)/src/main.o

UNIT_TESTS := merkle policy notice router store crypto util audit identifier decision request consent_model
UNIT_BINS  := $(UNIT_TESTS:%=$(BUILD)/tests/test_%)

WARN	:= -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wcast-qual -Wwrite-strings \
	   -Wsign-compare
# The same for C++, less the two C-only warnings, plus their C++ counterpart.
CXXWARN	:= $(filter-out -Wstrict-prototypes -Wmissing-prototypes,$(WARN)) \
	   -Wmissing-declarations
HARDEN	:= -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
ifeq ($(DEBUG),1)
OPT	:= -O0 -g
else
OPT	:= -O2 -g
endif

# Recursively expanded, so pkg-config runs after `deps` has installed it.
CFLAGS	 = -std=gnu11 $(OPT) $(WARN) $(HARDEN) -Iinclude -pthread \
	   $(shell pkg-config --cflags $(PKGS))
CXXFLAGS = -std=gnu++17 $(OPT) $(CXXWARN) $(HARDEN) -Iinclude -pthread
LDFLAGS	 = -pie -Wl,-z,relro,-z,now -pthread
# libunistring and libphonenumber ship no pkg-config file; the shim needs
# the C++ runtime.
LDLIBS	 = $(shell pkg-config --libs $(PKGS)) -lunistring -lphonenumber -lstdc++
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

.PHONY: all deps deps-test deps-bench run test check unit http memcheck bench bench-quick clean

all: $(BIN)

deps:
	@sh tools/deps.sh build

deps-test:
	@sh tools/deps.sh test

deps-bench:
	@sh tools/deps.sh bench

$(BIN): $(MAIN) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(MAIN) $(LIB) $(LDLIBS)

$(LIB): $(OBJS)
	rm -f $@
	ar rcs $@ $(OBJS)

$(BUILD)/%.o: %.c $(wildcard include/consentd/*.h) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.cc $(wildcard include/consentd/*.h) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c -o $@ $<

$(GEN): migrations $(wildcard migrations/*.sql) tools/embed-migrations.sh
	@mkdir -p $(dir $@)
	sh tools/embed-migrations.sh migrations > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/migrations.o: $(GEN)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) $(TEST_LIBS)

$(BUILD)/tests/dbtool: tests/tools/dbtool.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/gen: bench/gen.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/hello: bench/hello.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# consentd with store fault injection, for the tests that show a failing
# store answers 503 and never allow (see store_fault in src/store/store.c).
FAULT_OBJS := $(SRCS:%.c=$(BUILD)/faults/%.o) $(CXXSRCS:%.cc=$(BUILD)/%.o) \
	$(BUILD)/faults/gen/migrations.o

$(BUILD)/faults/%.o: %.c $(wildcard include/consentd/*.h) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DCM_FAULT_INJECTION -c -o $@ $<

$(BUILD)/faults/gen/migrations.o: $(GEN)
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

run: deps
	@$(MAKE) --no-print-directory $(BIN)
	@test -d var || $(BIN) init --data var
	@echo "demo token (all scopes; shown once, replaced on every 'make run'):"
	@$(BIN) token create --data var --name demo --replace \
	    --scopes consent:check,consent:read,consent:write,subjects:read,subjects:write,dsr:admin,audit:read,admin
	@echo "serving on http://127.0.0.1:8080  (try: curl http://127.0.0.1:8080/healthz)"
	$(BIN) serve --data var --policy policy --listen 127.0.0.1:8080

test: deps-test
	@$(MAKE) --no-print-directory check

# ---- what `make test` runs -----------------------------------------------

check: unit http
ifeq ($(SANITIZE),)
check: memcheck
endif

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

tests/node_modules/.installed: tests/package.json tests/package-lock.json
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

http: $(BIN) $(BUILD)/tests/dbtool $(BUILD)/tests/tlogcheck $(BUILD)/tests/consentd-faults \
    tests/node_modules/.installed
	CONSENTD_BIN=$(abspath $(BIN)) CONSENTD_DBTOOL=$(abspath $(BUILD)/tests/dbtool) \
	    CONSENTD_FAULTS_BIN=$(abspath $(BUILD)/tests/consentd-faults) \
	    CONSENTD_TLOGCHECK=$(abspath $(BUILD)/tests/tlogcheck) \
	    sh -c 'fail=0; for f in tests/http/*.test.mjs; do node --test "$$f" || fail=1; done; exit $$fail'

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
