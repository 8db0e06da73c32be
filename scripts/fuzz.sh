#!/usr/bin/env bash
# Runs every libFuzzer harness (tests/fuzz/fuzz_*.c) for a time, one after
# the other, each on a fresh working corpus seeded from the checked-in one.
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]   default 600 s each, all harnesses
#
# Builds a clang fuzz build in build-fuzz/. Per harness it prints
# executions per second, final coverage (cov: and ft: of libFuzzer's last
# status line), the working corpus size and the crashes found; the logs,
# working corpora and crash inputs stay in build-fuzz/fuzz-run/<harness>/.
# Exits 1 if any harness found a crash, leak or timeout.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-600}
shift || true
build="$src/build-fuzz"
runs="$build/fuzz-run"

# name runs max_len, from the harness table in tests/fuzz/CMakeLists.txt
table=$(sed -n 's/^ *"\(fuzz_[a-z0-9_]*\) \([0-9]*\) \([0-9]*\)".*/\1 \3/p' \
	"$src/tests/fuzz/CMakeLists.txt")
if [ "$#" -gt 0 ]; then
	harnesses=("$@")
else
	mapfile -t harnesses < <(awk '{print $1}' <<<"$table")
fi

echo "== build (clang, libFuzzer + ASan + UBSan) in $build"
CC=clang cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DSFFS_FUZZ=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${harnesses[@]}" >/dev/null

# field NAME LINE: the value after "NAME:" in a libFuzzer status line.
field() { sed -n "s/.* $1: *\([0-9a-zA-Z\/]*\).*/\1/p" <<<"$2"; }

status=0
summary=()
for h in "${harnesses[@]}"; do
	maxlen=$(awk -v h="$h" '$1 == h {print $2}' <<<"$table")
	dir="$runs/$h"
	rm -rf "$dir"
	mkdir -p "$dir/corpus" "$dir/crashes"
	cp -r "$src/tests/fuzz/corpus/$h/." "$dir/corpus/"
	echo "== $h: ${secs}s, max_len ${maxlen:-default}"
	rc=0
	"$build/tests/fuzz/$h" -max_total_time="$secs" \
		${maxlen:+-max_len="$maxlen"} -timeout=25 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$dir/crashes/" \
		"$dir/corpus" >"$dir/log" 2>&1 || rc=$?
	last=$(grep -E '^#[0-9]+' "$dir/log" | tail -n 1 || true)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log")
	files=$(find "$dir/corpus" -type f | wc -l)
	bytes=$(du -sk "$dir/corpus" | cut -f1)
	crashes=$(find "$dir/crashes" -type f | wc -l)
	line=$(printf '%-18s exec/s %-6s execs %-9s cov %-5s ft %-6s corpus %s files/%s KiB  crashes %s' \
		"$h" "${eps:-?}" "${execs:-?}" "$(field cov "$last")" \
		"$(field ft "$last")" "$files" "$bytes" "$crashes")
	echo "$line"
	summary+=("$line")
	if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
		status=1
		grep -E 'ERROR|SUMMARY|invariant failed' "$dir/log" | head -n 5 || true
		ls "$dir/crashes"
	fi
done

echo "== summary (${secs}s each)"
printf '%s\n' "${summary[@]}"
exit "$status"
