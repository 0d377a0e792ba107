#!/bin/sh
# Runs `consentd init` and a short `consentd serve` (a few requests, then
# SIGTERM) under valgrind and fails on any leak or memory error.
set -eu
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vg="valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99"

$vg --log-file="$tmp/init.vg" "$bin" init --data "$tmp/data" >/dev/null
tok=$($vg --log-file="$tmp/token.vg" "$bin" token create --data "$tmp/data" --name vg --scopes admin 2>/dev/null)

$vg --log-file="$tmp/serve.vg" "$bin" serve --data "$tmp/data" --policy policy \
	--listen 127.0.0.1:0 2>"$tmp/serve.log" &
pid=$!
port=""
for _ in $(seq 1 200); do
	port=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$tmp/serve.log")
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/serve.log"; echo "memcheck: serve did not start"; exit 1; }
for p in /healthz /readyz /v1/policy /.well-known/gpc.json /nope; do
	curl -s -o /dev/null "http://127.0.0.1:$port$p"
done
curl -s -o /dev/null -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/v1/tokens"
curl -s -o /dev/null -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/metrics"
curl -s -o /dev/null -H "Authorization: Bearer cmt_0000000000000000_x" "http://127.0.0.1:$port/v1/tokens"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
fail=0
for f in init token serve; do
	if [ -s "$tmp/$f.vg" ]; then
		echo "memcheck: valgrind reports for consentd $f:"; cat "$tmp/$f.vg"; fail=1
	fi
done
[ "$status" -eq 0 ] || { echo "memcheck: serve exited $status"; fail=1; }
[ "$fail" -eq 0 ] && echo "memcheck: init, token create and serve: no leaks, no errors"
exit "$fail"
