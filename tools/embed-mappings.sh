#!/bin/sh
# SPDX-License-Identifier: ISC
# Writes a C file holding every import mapping share/mappings/NAME.json,
# byte for byte, so the consentd binary carries the providers' mappings
# (consentd import --mapping NAME, POST /v1/imports?mapping=NAME).
# Usage: embed-mappings.sh DIR
set -eu
dir=$1
printf '/* Generated from %s by tools/embed-mappings.sh: do not edit. */\n' "$dir"
printf '#include "consentd/import.h"\n\n'
n=0
for f in "$dir"/*.json; do
	[ -e "$f" ] || continue
	printf 'static const char m%d[] = {\n' "$n"
	od -An -v -tx1 "$f" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/\t/'
	printf '\t0x00 };\n'
	n=$((n + 1))
done
printf 'const struct cm_import_builtin cm_import_builtins[] = {\n'
i=0
for f in "$dir"/*.json; do
	[ -e "$f" ] || continue
	b=$(basename "$f" .json)
	printf '\t{ "%s", m%d, sizeof(m%d) - 1 },\n' "$b" "$i" "$i"
	i=$((i + 1))
done
[ "$i" -gt 0 ] || printf '\t{ 0, 0, 0 },\n'
printf '};\nconst size_t cm_import_builtins_count = %d;\n' "$i"
