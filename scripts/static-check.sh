#!/usr/bin/env bash
# Static analysis with zero findings allowed: cppcheck and clang-tidy over
# fetch/ archive/ open/ catalog/ trust/ fs/ util/ tools/.
#
#   scripts/static-check.sh
#
# A finding is fixed, or justified where it is: `// cppcheck-suppress ID`
# (with why) for cppcheck, `// NOLINT(check): why` for clang-tidy. The
# clang-tidy checks are in .clang-tidy (each disabled check says why);
# file-wide cppcheck suppressions, each justified, in tests/cppcheck.supp.
# clang-tidy uses the compile_commands.json of a clang configure in
# build-static/ (configured only, nothing is built).
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$src"
jobs=$(nproc)
dirs=()
for d in fetch archive open catalog trust fs util tools; do
	[ -d "$d" ] && dirs+=("$d")
done
status=0

echo "== cppcheck $(cppcheck --version | cut -d' ' -f2)"
includes=()
for d in include "${dirs[@]}"; do
	includes+=(-I "$d")
done
cppcheck --quiet --std=c11 -j"$jobs" \
	--enable=warning,performance,portability \
	--error-exitcode=1 --inline-suppr \
	--suppressions-list=tests/cppcheck.supp \
	-D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DSFFS_VERSION='"0"' \
	"${includes[@]}" "${dirs[@]}" || status=1

echo "== clang-tidy $(clang-tidy --version | sed -n 's/.*version \([0-9.]*\).*/\1/p')"
build="$src/build-static"
CC=clang cmake -S "$src" -B "$build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
	>/dev/null
regex="^$src/($(
	IFS='|'
	echo "${dirs[*]}"
))/"
log="$build/clang-tidy.log"
# run-clang-tidy exits non-zero when any file has an error (all warnings
# are errors through WarningsAsErrors in .clang-tidy).
if ! run-clang-tidy -p "$build" -quiet -j"$jobs" "$regex" >"$log" 2>&1; then
	status=1
fi
# Print the findings without colour codes or the long command lines.
sed 's/\x1b\[[0-9;]*m//g' "$log" |
	grep -E '(warning|error): |^ +[0-9]+ \|' | grep -v '^clang-tidy' || true
findings=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -cE ': (warning|error): ' || true)
echo "clang-tidy: $findings findings"
[ "$findings" = 0 ] || status=1

if [ "$status" = 0 ]; then
	echo "== static checks: no findings"
else
	echo "== static checks: FINDINGS"
fi
exit "$status"
