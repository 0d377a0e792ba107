#!/bin/sh
# SPDX-License-Identifier: ISC
# Every source file of the project names its licence (LICENSE, ISC) on an
# SPDX line near its top. Third-party test vectors keep their own licence;
# migrations are left as they are, since their bytes are checksummed into
# every store that applied them.
set -eu
missing=$(find src include tests tools bench Makefile \
    \( -path tests/vectors -o -path tests/node_modules -o -path tests/fuzz/corpus \) -prune -o \
    -type f \( -name '*.c' -o -name '*.h' -o -name '*.cc' -o -name '*.mjs' -o -name '*.js' \
    -o -name '*.sh' -o -name '*.go' -o -name Makefile \) -print |
    while read -r f; do
	head -3 "$f" | grep -q 'SPDX-License-Identifier: ISC' || echo "$f"
    done)
if [ -n "$missing" ]; then
	echo "spdx: no 'SPDX-License-Identifier: ISC' line in:"
	echo "$missing" | sed 's/^/  /'
	exit 1
fi
echo "spdx: every source file names its licence"
