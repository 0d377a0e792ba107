#!/bin/sh
# SPDX-License-Identifier: ISC
# Runs `consentd init` and a short `consentd serve` (a few requests, then
# SIGTERM) under valgrind and fails on any leak or memory error.
set -eu
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# libphonenumber keeps what it builds on first use until exit; the
# suppressions cover exactly that (see the file).
supp="$(dirname "$0")/libphonenumber.supp"
vg="valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --suppressions=$supp --error-exitcode=99"

$vg --log-file="$tmp/init.vg" "$bin" init --data "$tmp/data" >/dev/null
tok=$($vg --log-file="$tmp/token.vg" "$bin" token create --data "$tmp/data" --name vg --scopes admin,subjects:read,subjects:write,consent:read,consent:write,audit:read 2>/dev/null)

# The outbox's delivery thread polls often, so its paths run here too.
export CONSENTD_OUTBOX_BASE_MS=200 CONSENTD_OUTBOX_TIMEOUT_MS=500
: >"$tmp/serve.log"
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
for p in /healthz /readyz /v1/policy /.well-known/gpc.json /nope /v1/policy/notices \
	'/v1/policy/notices?purpose=newsletter' /v1/policy/notices/newsletter/2 \
	/v1/policy/notices/newsletter/9 /v1/policy/notices/newsletter/x; do
	curl -s -o /dev/null "http://127.0.0.1:$port$p"
done
curl -s -o /dev/null -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/v1/tokens"
curl -s -o /dev/null -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/metrics"
curl -s -o /dev/null -H "Authorization: Bearer cmt_0000000000000000_x" "http://127.0.0.1:$port/v1/tokens"
auth="Authorization: Bearer $tok"
json="Content-Type: application/json"
a=$(curl -s -H "$auth" -H "$json" -d '{"identifiers":["email:vg@example.com"],"profile":{"n":1}}' \
	"http://127.0.0.1:$port/v1/subjects" | sed -n 's/.*"subject_id":"\([a-z0-9_]*\)".*/\1/p')
b=$(curl -s -H "$auth" -H "$json" -d '{"identifiers":["phone:+447700900123"],"profile":{"m":2}}' \
	"http://127.0.0.1:$port/v1/subjects" | sed -n 's/.*"subject_id":"\([a-z0-9_]*\)".*/\1/p')
[ -n "$a" ] && [ -n "$b" ] || { echo "memcheck: subjects were not created"; kill -TERM "$pid"; exit 1; }
curl -s -o /dev/null -H "$auth" -H "$json" -d '{"identifiers":["email:vg@example.com"]}' "http://127.0.0.1:$port/v1/subjects"
curl -s -o /dev/null -H "$auth" -H "$json" -d "{\"into\":\"$a\",\"from\":\"$b\"}" "http://127.0.0.1:$port/v1/subjects/merge"
curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/subjects/$a"
curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/subjects/$b"
curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/subjects/resolve?identifier=email%3Avg%40example.com"
curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/subjects/resolve?identifier=email%3AJOS%C3%89%40XN--BCHER-KVA.example"
curl -s -o /dev/null -H "$auth" -X PATCH -H "$json" -d '{"attributes":{"n":null}}' "http://127.0.0.1:$port/v1/subjects/$a/profile"
curl -s -o /dev/null -H "$auth" -X DELETE "http://127.0.0.1:$port/v1/subjects/$a/identifiers/phone%3A%2B447700900123"
curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/audit/proof?index=0"
curl -s -o /dev/null -H "$auth" -H "$json" -d '{"identifier":"email:vg@example.com","purpose":"newsletter","channel":"email","state":"granted","method":"web_form","evidence":{"ip":"192.0.2.1"},"request_id":"vg1"}' "http://127.0.0.1:$port/v1/consents"
curl -s -o /dev/null -H "$auth" -H "$json" -d '{"identifier":"email:vg@example.com","method":"gpc"}' "http://127.0.0.1:$port/v1/consents"
curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/consent/check?identifier=email%3Avg%40example.com&purpose=newsletter&channel=email"
curl -s -o /dev/null -H "$auth" -H "$json" -d '{"checks":[{"identifier":"email:vg@example.com","purpose":"order_updates","channel":"sms"},{"identifier":"x"}]}' "http://127.0.0.1:$port/v1/consent/check"
printf '{"identifier":"email:vg@example.com","purpose":"newsletter","channel":"email"}\nbad\n' | curl -s -o /dev/null -H "$auth" -H "Content-Type: application/x-ndjson" --data-binary @- "http://127.0.0.1:$port/v1/consent/check"
printf '{"identifier":"email:s1@example.com","reason":"bounced"}\nbad\n' | curl -s -o /dev/null -H "$auth" -H "Content-Type: application/x-ndjson" --data-binary @- "http://127.0.0.1:$port/v1/suppressions"
curl -s -o /dev/null -H "$auth" -X PUT -H "$json" -d '{"channels":{"email":false},"topics":{"sale_offers":true}}' "http://127.0.0.1:$port/v1/subjects/$a/preferences"
curl -s -o /dev/null -H "$auth" -H "$json" -d '{"reason":"privacy"}' "http://127.0.0.1:$port/v1/subjects/$a/unsubscribe"
curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/subjects/$a/consents?history=true"
curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/reports/holdout"
# A consent receipt: refused, issued once a checkpoint covers the event,
# and verified offline (that too under valgrind).
ev=$(curl -s -H "$auth" -H "$json" -d '{"identifier":"email:vg2@example.com","purpose":"newsletter","channel":"email","state":"granted","method":"web_form"}' \
	"http://127.0.0.1:$port/v1/consents" | sed -n 's/.*"event_id":"\([a-z0-9_]*\)".*/\1/p')
curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/consents/evt_x/receipt"
curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/consents/evt_23abcdefghijklmnopqrstuvwx/receipt"
for _ in $(seq 1 30); do
	curl -s -H "$auth" "http://127.0.0.1:$port/v1/consents/$ev/receipt" >"$tmp/receipt.json"
	grep -q '"signature"' "$tmp/receipt.json" && break
	sleep 0.5
done
if ! $vg --log-file="$tmp/receipt.vg" "$bin" receipt verify "$tmp/receipt.json" >/dev/null 2>&1 ||
    [ -s "$tmp/receipt.vg" ]; then
	echo "memcheck: consentd receipt verify failed:"; cat "$tmp/receipt.vg"; kill -TERM "$pid"; exit 1
fi
# The outbox: a request's code delivered by the file sender, and a webhook to
# a closed port (libcurl's failure path) retried.
dtok=$("$bin" token create --data "$tmp/data" --name vgdsr --scopes dsr:admin 2>/dev/null)
curl -s -o /dev/null -H "$auth" -H "$json" -d '{"name":"vg","url":"http://127.0.0.1:9/h","events":["objection"],"secret":"0123456789abcdef"}' "http://127.0.0.1:$port/v1/systems"
curl -s -o /dev/null -H "Authorization: Bearer $dtok" -H "$json" -d '{"type":"access","identifier":"email:vg@example.com"}' "http://127.0.0.1:$port/v1/dsr"
r=$(curl -s -H "Authorization: Bearer $dtok" -H "$json" -d '{"type":"objection","identifier":"email:vg@example.com","verified":true}' \
	"http://127.0.0.1:$port/v1/dsr" | sed -n 's/^{"id":"\(dsr_[a-z0-9]*\)".*/\1/p')
curl -s -o /dev/null -H "Authorization: Bearer $dtok" -X POST "http://127.0.0.1:$port/v1/dsr/$r/process"
sleep 3
curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/outbox"
curl -s -o /dev/null -H "Authorization: Bearer $dtok" "http://127.0.0.1:$port/v1/dsr/$r"
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
[ "$fail" -eq 0 ] && echo "memcheck: init, token create and serve (tokens, subjects, merge, consents, checks, audit): no leaks, no errors"
exit "$fail"
