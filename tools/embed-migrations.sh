#!/bin/sh
# SPDX-License-Identifier: ISC
# Writes a C file holding every migrations/NNNN_name.sql, byte for byte, so
# the consentd binary carries its schema with it. Usage: embed-migrations.sh DIR
set -eu
dir=$1
printf '/* Generated from %s by tools/embed-migrations.sh: do not edit. */\n' "$dir"
printf '#include "consentd/store.h"\n\n'
n=0
for f in "$dir"/[0-9][0-9][0-9][0-9]_*.sql; do
	[ -e "$f" ] || continue
	printf 'static const char m%d[] = {\n' "$n"
	od -An -v -tx1 "$f" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/\t/'
	printf '\t0x00 };\n'
	n=$((n + 1))
done
printf 'const struct cm_migration cm_migrations_builtin[] = {\n'
i=0
for f in "$dir"/[0-9][0-9][0-9][0-9]_*.sql; do
	[ -e "$f" ] || continue
	b=$(basename "$f")
	v=$(printf '%s' "$b" | cut -c1-4 | sed 's/^0*//')
	printf '\t{ %s, "%s", m%d, sizeof(m%d) - 1 },\n' "$v" "$b" "$i" "$i"
	i=$((i + 1))
done
[ "$i" -gt 0 ] || printf '\t{ 0, 0, 0, 0 },\n'
printf '};\nconst size_t cm_migrations_builtin_count = %d;\n' "$i"
