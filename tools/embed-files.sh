#!/bin/sh
# SPDX-License-Identifier: ISC
# Writes a C file holding every DIR/NAME.EXT byte for byte, as an array
# of { name, text, length } of STRUCT named ARRAY (with ARRAY_count), so
# the consentd binary carries them: the message templates of
# web/templates/ and the import mappings of share/mappings/.
# Usage: embed-files.sh DIR EXT HEADER STRUCT ARRAY
set -eu
dir=$1 ext=$2 header=$3 struct=$4 array=$5
printf '/* Generated from %s by tools/embed-files.sh: do not edit. */\n' "$dir"
printf '#include "%s"\n\n' "$header"
n=0
for f in "$dir"/*."$ext"; do
	[ -e "$f" ] || continue
	printf 'static const char f%d[] = {\n' "$n"
	od -An -v -tx1 "$f" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/\t/'
	printf '\t0x00 };\n'
	n=$((n + 1))
done
printf 'const struct %s %s[] = {\n' "$struct" "$array"
i=0
for f in "$dir"/*."$ext"; do
	[ -e "$f" ] || continue
	b=$(basename "$f" ."$ext")
	printf '\t{ "%s", f%d, sizeof(f%d) - 1 },\n' "$b" "$i" "$i"
	i=$((i + 1))
done
[ "$i" -gt 0 ] || printf '\t{ 0, 0, 0 },\n'
printf '};\nconst size_t %s_count = %d;\n' "$array" "$i"
