#!/bin/sh
# SPDX-License-Identifier: ISC
# Installs the Debian packages consentd needs when they are missing.
#   tools/deps.sh build   compilers, pkg-config and the libraries (the four of
#                         the store and server, libpq, GnuTLS; libidn2, libunistring and
#                         libphonenumber for identifiers)
#   tools/deps.sh test    the above, plus cmocka, Node.js, Go, valgrind,
#                         chromium (the browser tests), PostgreSQL 15, …,
#                         and clang with its fuzzer runtime
#   tools/deps.sh fuzz    the build packages, clang and its fuzzer runtime
#   tools/deps.sh ha      PostgreSQL 15, Patroni and etcd (make test-ha)
# As root it runs apt-get itself; otherwise it uses sudo when available, or
# prints the apt-get command to run and fails.
set -eu
want=${1:-build}
missing=""

need_cmd() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need_pc() { pkg-config --exists "$1" 2>/dev/null || missing="$missing $2"; }
need_file() { [ -e "$1" ] || missing="$missing $2"; }
# need_py MODULE PACKAGE: whether the system python3 (the one Debian's
# python3-* packages are for) imports MODULE.
need_py() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1 || missing="$missing $2"; }
# need_header LANG HEADER COMPILER PACKAGE: whether COMPILER finds HEADER
# (for the libraries that ship no pkg-config file).
need_header() {
	printf '#include <%s>\n' "$2" | "$3" -x "$1" -E - >/dev/null 2>&1 || missing="$missing $4"
}

# need_fuzzer: whether clang links a libFuzzer target with the sanitizers
# (libclang-rt-dev has their runtimes).
need_fuzzer() {
	if ! command -v clang >/dev/null 2>&1 || ! command -v clang++ >/dev/null 2>&1; then
		missing="$missing clang libclang-rt-dev"
		return
	fi
	t=$(mktemp)
	printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' |
	    clang -fsanitize=fuzzer,address,undefined -x c -o "$t" - >/dev/null 2>&1 ||
	    missing="$missing libclang-rt-dev"
	rm -f "$t"
}

need_cmd cc gcc
need_cmd c++ g++
need_cmd make make
need_cmd pkg-config pkg-config
need_pc libsodium libsodium-dev
need_pc sqlcipher libsqlcipher-dev
need_pc libpq libpq-dev
need_pc libmicrohttpd libmicrohttpd-dev
need_pc jansson libjansson-dev
need_pc libidn2 libidn2-dev
need_pc libcurl libcurl4-openssl-dev
need_pc simdjson libsimdjson-dev
need_pc gnutls libgnutls28-dev
need_pc nettle nettle-dev
need_header c unicase.h cc libunistring-dev
need_header c++ phonenumbers/phonenumberutil.h c++ libphonenumber-dev
# libcsv reads the CSV exports consentd import takes; no pkg-config file.
need_header c csv.h cc libcsv-dev
if [ "$want" = test ] || [ "$want" = bench ]; then
	need_pc cmocka libcmocka-dev
	need_cmd node nodejs
	need_cmd npm npm
	need_cmd go golang-go
	need_file /usr/share/gocode/src/golang.org/x/mod/sumdb/note/note.go golang-golang-x-mod-dev
	need_cmd valgrind valgrind
	need_cmd curl curl
	need_cmd sqlcipher sqlcipher
	need_cmd chromium chromium
	need_py aiosmtpd python3-aiosmtpd
	need_cmd openssl openssl
	# promtool (tests/http/metrics.test.mjs) ships only in the prometheus
	# package; systemd-analyze checks dist/consentd.service.
	need_cmd promtool prometheus
	need_cmd systemd-analyze systemd
	# A throwaway PostgreSQL cluster (tests/pg/): the server and psql.
	need_file /usr/lib/postgresql/15/bin/initdb postgresql-15
	need_cmd psql postgresql-client-15
fi
if [ "$want" = test ] || [ "$want" = fuzz ]; then
	need_fuzzer
fi
if [ "$want" = bench ]; then
	need_cmd wrk wrk
fi
# make test-ha: a Patroni cluster with etcd on loopback (tests/ha/).
if [ "$want" = ha ]; then
	need_file /usr/lib/postgresql/15/bin/initdb postgresql-15
	need_cmd psql postgresql-client-15
	need_cmd node nodejs
	need_cmd patroni patroni
	need_cmd patronictl patroni
	need_cmd etcd etcd-server
fi

[ -n "$missing" ] || exit 0
echo "consentd: installing missing packages:$missing" >&2
if [ "$(id -u)" = 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "consentd: run as root: apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The prometheus package enables and starts its own server (port 9090),
# and etcd-server its own etcd: the tests want only promtool, and the
# failover test runs an etcd of its own, so a service we brought is
# stopped and disabled again.
for pkg in prometheus etcd-server; do
	case " $missing " in
	*" $pkg "*) ;;
	*) continue ;;
	esac
	svc=${pkg%-server}
	if [ -d /run/systemd/system ]; then
		$SUDO systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
	elif [ -x "/etc/init.d/$svc" ]; then
		$SUDO "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
		$SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true
	fi
done
