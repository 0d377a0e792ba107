#!/bin/sh
# SPDX-License-Identifier: ISC
# Checks the systemd unit dist/consentd.service: that it carries the
# hardening docs/operations.md promises, and that `systemd-analyze verify`
# finds nothing to say about it (verify warns of an unknown or malformed
# setting and still exits 0, so any output fails here). verify also wants
# the binary of ExecStart to exist: the unit is checked as a copy whose
# ExecStart runs BIN, the binary just built. Prints the exposure score of
# `systemd-analyze security` and fails above THRESHOLD (0-100; 1.4 is 14).
# Usage: tools/check-unit.sh BIN [THRESHOLD]
set -eu
bin=$1
threshold=${2:-20}
unit=dist/consentd.service
fail=0

for want in 'DynamicUser=yes' 'StateDirectory=consentd' 'ConfigurationDirectory=consentd' \
    'ProtectSystem=strict' 'ProtectHome=yes' 'NoNewPrivileges=yes' 'PrivateTmp=yes' \
    'PrivateDevices=yes' 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
    'SystemCallFilter=@system-service' 'CapabilityBoundingSet=' 'MemoryDenyWriteExecute=yes' \
    'LockPersonality=yes' 'RestrictNamespaces=yes' 'UMask=0077' 'Restart=on-failure' \
    'ExecReload=/bin/kill -HUP $MAINPID'; do
	if ! grep -qxF "$want" "$unit"; then
		echo "unit: $unit lacks the line '$want'"
		fail=1
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case $bin in
/*) ;;
*) bin=$(pwd)/$bin ;;
esac
sed "s|/usr/local/bin/consentd|$bin|g" "$unit" > "$tmp/consentd.service"
if ! out=$(systemd-analyze verify "$tmp/consentd.service" 2>&1) || [ -n "$out" ]; then
	echo "unit: systemd-analyze verify $unit:"
	echo "$out"
	fail=1
fi
if sec=$(systemd-analyze security --offline=true --threshold="$threshold" \
    "$tmp/consentd.service" 2>&1); then
	echo "unit: $(echo "$sec" | grep 'Overall exposure') (at most $threshold/100 allowed)"
else
	echo "unit: systemd-analyze security: exposure above $threshold/100, or not measured:"
	echo "$sec" | grep -v '✓' || true
	fail=1
fi
[ "$fail" -eq 0 ] && echo "unit: ok ($unit verifies)"
exit "$fail"
