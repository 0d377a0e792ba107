#!/bin/sh
# SPDX-License-Identifier: ISC
# Writes a C file holding every message template web/templates/NAME.txt,
# byte for byte, so the consentd binary carries the texts it sends with it.
# Usage: embed-templates.sh DIR
set -eu
dir=$1
printf '/* Generated from %s by tools/embed-templates.sh: do not edit. */\n' "$dir"
printf '#include "consentd/outbox.h"\n\n'
n=0
for f in "$dir"/*.txt; do
	[ -e "$f" ] || continue
	printf 'static const char t%d[] = {\n' "$n"
	od -An -v -tx1 "$f" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/\t/'
	printf '\t0x00 };\n'
	n=$((n + 1))
done
printf 'const struct cm_template cm_templates_builtin[] = {\n'
i=0
for f in "$dir"/*.txt; do
	[ -e "$f" ] || continue
	b=$(basename "$f" .txt)
	printf '\t{ "%s", t%d, sizeof(t%d) - 1 },\n' "$b" "$i" "$i"
	i=$((i + 1))
done
[ "$i" -gt 0 ] || printf '\t{ 0, 0, 0 },\n'
printf '};\nconst size_t cm_templates_builtin_count = %d;\n' "$i"
