#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine to a verdict:
# installs dependencies, builds a normal and an ASan+UBSan build, builds the
# fixture, and runs every test (unit, fuzz smoke, mount tests against nginx
# on loopback) through CTest in both builds.
#
#   scripts/test.sh            everything
#   scripts/test.sh -R tar     only tests whose name matches (ctest -R)
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$src"
jobs=$(nproc)

"$src/scripts/install-deps.sh"

build() { # dir, extra cmake args...
	local dir=$1
	shift
	cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j"$jobs"
}

echo "== build (release)"
build "$src/build"
echo "== build (ASan + UBSan)"
build "$src/build-asan" -DSFFS_SANITIZE=ON

echo "== fixture"
export SFFS_FIXTURE_DIR="$src/build/fixture"
"$src/scripts/make-fixture.sh" "$SFFS_FIXTURE_DIR"

status=0
echo "== tests (release)"
(cd "$src/build" && ctest --output-on-failure -j2 "$@") || status=1

echo "== tests (ASan + UBSan)"
# A daemon's sanitizer report would go to /dev/null once it detaches, so
# every report goes to a file, and any file there fails the run.
reports="$src/build-asan/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
(cd "$src/build-asan" && ctest --output-on-failure -j2 "$@") || status=1
if compgen -G "$reports/*" >/dev/null; then
	echo "sanitizer reports:"
	cat "$reports"/*
	status=1
fi
unset ASAN_OPTIONS UBSAN_OPTIONS

if [ "$status" = 0 ]; then
	echo "== all tests passed"
else
	echo "== FAILED"
fi
exit "$status"
