#!/bin/sh
# SPDX-License-Identifier: ISC
# Runs the libFuzzer targets built in DIR (make fuzz, make test).
#   run.sh seeds DIR 0 TARGET...     each target over its seed corpus only
#                                    (tests/fuzz/corpus/TARGET/): a quick
#                                    regression run that writes nothing
#   run.sh fuzz DIR SECONDS TARGET...
#                                    each target for SECONDS, starting from
#                                    its seeds and what earlier runs kept in
#                                    DIR/corpus/TARGET (new finds go there;
#                                    crashes to DIR/artifacts/), then a
#                                    table of executions, coverage and
#                                    corpus per target
# Fails when a target fails; in fuzz mode only after every target has run.
set -eu
mode=$1 dir=$2 seconds=$3
shift 3
tmp="$dir/tmp"
mkdir -p "$tmp"
export CONSENTD_FUZZ_TMP="$tmp"
# Leaks are checked per input by libFuzzer; the sanitizers stop at the first error.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=0:detect_leaks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"
# The targets' own output (the witness prints what a command line would) is
# dropped; libFuzzer and the sanitizers still report on their own copy.
opts="-close_fd_mask=3"

if [ "$mode" = seeds ]; then
	for t in "$@"; do
		n=$(ls "tests/fuzz/corpus/$t" | wc -l)
		printf 'fuzz %-12s %3d seeds: ' "$t" "$n"
		if "$dir/fuzz_$t" $opts "tests/fuzz/corpus/$t"/* >"$tmp/$t.seeds.log" 2>&1; then
			echo ok
		else
			echo FAILED
			cat "$tmp/$t.seeds.log"
			exit 1
		fi
	done
	exit 0
fi

[ "$mode" = fuzz ] || { echo "usage: run.sh seeds|fuzz DIR SECONDS TARGET..." >&2; exit 64; }
failed=""
summary="$dir/summary.txt"
printf '%-12s %12s %9s %7s %8s %10s %s\n' target executions exec/s cov features \
    corpus result > "$summary"
for t in "$@"; do
	mkdir -p "$dir/corpus/$t" "$dir/artifacts"
	log="$dir/$t.log"
	echo "== fuzz $t for ${seconds}s (log: $log)"
	if "$dir/fuzz_$t" $opts -max_total_time="$seconds" -print_final_stats=1 \
	    -artifact_prefix="$dir/artifacts/$t-" "$dir/corpus/$t" "tests/fuzz/corpus/$t" \
	    >"$log" 2>&1; then
		result=ok
	else
		result=FAILED
		failed="$failed $t"
		grep -E "ERROR|SUMMARY|fuzz check|artifact" "$log" | head -20 || true
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	ft=$(grep -Eo 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	corp=$(grep -Eo 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
	printf '%-12s %12s %9s %7s %8s %10s %s\n' "$t" "${execs:--}" "${rate:--}" "${cov:--}" \
	    "${ft:--}" "${corp:--}" "$result" >> "$summary"
done
cat "$summary"
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed (inputs in $dir/artifacts/)" >&2
	exit 1
fi
