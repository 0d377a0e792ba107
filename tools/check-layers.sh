#!/bin/sh
# SPDX-License-Identifier: ISC
# The layering rules of src/ (README, "Layout"), checked on the sources and
# the built objects:
#  1. crypto and store include nothing from core, api or http, and http
#     nothing from store, directly or through another header (cc -MM);
#  2. no cycle between the files of src/core/: if one calls into another,
#     the other calls nothing, however indirectly, back (nm on the objects);
#  3. a database library's header is included by its engine in src/store/
#     alone (<sqlite3.h> by the SQLite engine's files, which store_int.h
#     names; <libpq-fe.h> by exec_pg.c), and no SQL statement is written
#     outside src/store/.
# Usage: tools/check-layers.sh BUILD_DIR CC CFLAGS...
set -eu
build=$1; shift
cc=$1; shift
fail=0

# The headers that belong to each layer above the one being checked.
core_h='consent|core|decision|identifier|notice|policy|reports|scope|subject|token|upgrade'
higher_h="consentd/($core_h|api|app|http|cli)\.h|src/(core|api|http|cli)/"
store_h='consentd/store\.h|src/store/'

inc() {	# DIR FORBIDDEN-REGEX WHAT (compiler flags in $flags)
	d=$1 re=$2 what=$3
	for f in src/$d/*.c; do
		bad=$(eval "\"\$cc\" $flags -MM \"\$f\"" | tr ' \\' '\n\n' |
		    grep -E "$re" | sort -u | tr '\n' ' ' || true)
		if [ -n "$bad" ]; then
			echo "layers: $f includes $what: $bad"
			fail=1
		fi
	done
}

flags="$*"
inc crypto "$higher_h" "a header above crypto"
inc store "$higher_h" "a header above the store"
inc http "$store_h" "a store header"

# Which files include SQLite's header, directly or through another.
sqlite_engine='src/store/(exec|store|backup|rotate)\.c'
for f in src/*.c src/*/*.c; do
	if eval "\"\$cc\" $flags -MM \"\$f\"" | tr ' \\' '\n\n' | grep -q '/sqlite3\.h$' &&
	    ! printf '%s\n' "$f" | grep -Eq "^$sqlite_engine\$"; then
		echo "layers: $f includes <sqlite3.h>, which only the SQLite engine may"
		fail=1
	fi
done
pq=$(grep -rl 'libpq-fe\.h' src include | grep -v '^src/store/exec_pg\.c$' || true)
if [ -n "$pq" ]; then
	echo "layers: <libpq-fe.h> is included outside the PostgreSQL engine:" $pq
	fail=1
fi
sql=$(grep -rnE '"(SELECT|INSERT (OR [A-Z]+ )?INTO|UPDATE [a-z_]+ SET|DELETE FROM|CREATE (TABLE|INDEX|TRIGGER)|DROP (TABLE|INDEX|TRIGGER)|PRAGMA|BEGIN|COMMIT|ROLLBACK|SAVEPOINT)\b' \
    src include --include='*.c' --include='*.h' | grep -v '^src/store/' || true)
if [ -n "$sql" ]; then
	echo "layers: SQL outside src/store/:"
	echo "$sql"
	fail=1
fi

# Calls between the objects of src/core/: an edge A -> B when A uses a
# symbol B defines. A cycle is two files that reach each other.
for o in "$build"/src/core/*.o; do
	n=$(basename "$o" .o)
	nm "$o" | awk -v n="$n" '$2 ~ /^[TDBR]$/ { print "D", $3, n } $1 == "U" { print "U", $2, n }'
done | awk '
	$1 == "D" { def[$2] = $3; next }
	{ use[NR] = $2; user[NR] = $3 }
	END {
		for (i in use) {
			d = def[use[i]]
			if (d != "" && d != user[i]) { reach[user[i], d] = 1; node[d]; node[user[i]] }
		}
		for (k in node) for (i in node) if ((i, k) in reach)
			for (j in node) if ((k, j) in reach) reach[i, j] = 1
		bad = 0
		for (i in node) for (j in node)
			if (i < j && (i, j) in reach && (j, i) in reach) {
				printf "layers: src/core/%s.c and src/core/%s.c call each other\n", i, j
				bad = 1
			}
		exit bad
	}' || fail=1

if [ "$fail" -eq 0 ]; then
	echo "layers: ok (crypto and store below core/api/http, http above no store, no cycle" \
	    "in core, <sqlite3.h> and <libpq-fe.h> in their engines alone, SQL in src/store/ alone)"
fi
exit "$fail"
