#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine to a verdict:
# installs dependencies, builds a normal and an ASan+UBSan build, builds the
# fixture, and runs every test (unit, mount tests against nginx on
# loopback) through CTest in both builds; then the unit tests and the
# concurrent mount test under ThreadSanitizer, the fuzz harnesses for a
# fixed number of inputs (clang build), and the static checks. Prints the
# time of each stage at the end.
#
#   scripts/test.sh            everything
#   scripts/test.sh -R tar     only tests whose name matches (ctest -R; the
#                              TSan and fuzz stages apply it too)
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$src"
jobs=$(nproc)
timings=()
stage_start=$SECONDS
stage_name=
# stage NAME: ends the running stage (recording its time) and starts NAME.
stage() {
	if [ -n "$stage_name" ]; then
		timings+=("$(printf '%5ds  %s' $((SECONDS - stage_start)) "$stage_name")")
	fi
	stage_name=$1
	stage_start=$SECONDS
	[ -z "$1" ] || echo "== $1"
}

stage "install dependencies"
"$src/scripts/install-deps.sh"

build() { # dir, extra cmake args...
	local dir=$1
	shift
	cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j"$jobs"
}

stage "build (release)"
build "$src/build"
stage "build (ASan + UBSan)"
build "$src/build-asan" -DSFFS_SANITIZE=ON

stage "fixture"
export SFFS_FIXTURE_DIR="$src/build/fixture"
"$src/scripts/make-fixture.sh" "$SFFS_FIXTURE_DIR"

status=0
stage "tests (release)"
(cd "$src/build" && ctest --output-on-failure -j2 "$@") || status=1

stage "tests (ASan + UBSan)"
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

stage "build (TSan)"
build "$src/build-tsan" -DSFFS_TSAN=ON
stage "tests (TSan: unit, concurrent mount, stalled origin, catalog attach/release, buildcache fetchers, attach waits)"
# Same pattern as ASan: every report goes to a file (the daemon detaches),
# any file fails the run. No suppressions: libcurl and OpenSSL are not
# instrumented, but every call into them is made with our own locks or
# per-thread handles, and TSan has reported nothing there.
reports="$src/build-tsan/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=1:second_deadlock_stack=1"
tsan_args=("$@")
[ "$#" -gt 0 ] || tsan_args=(-R 'unit|mount.test_mount|mount.test_stall|mount.test_catalog$|mount.test_buildcache|mount.test_lookup|mount.test_bcreloc')
(cd "$src/build-tsan" &&
	SFFS_MOUNT_VARIANTS=tar.gz ctest --output-on-failure -j2 "${tsan_args[@]}") ||
	status=1
if compgen -G "$reports/*" >/dev/null; then
	echo "sanitizer reports:"
	cat "$reports"/*
	status=1
fi
unset TSAN_OPTIONS

stage "build (clang, fuzz harnesses)"
CC=clang build "$src/build-fuzz" -DSFFS_FUZZ=ON
stage "tests (fuzz, fixed runs)"
(cd "$src/build-fuzz" && ctest --output-on-failure -j2 -L fuzz "$@") ||
	status=1

stage "static checks"
"$src/scripts/static-check.sh" || status=1
stage ""

echo "== time per stage"
printf '%s\n' "${timings[@]}"
if [ "$status" = 0 ]; then
	echo "== all tests passed"
else
	echo "== FAILED"
fi
exit "$status"
