#!/usr/bin/env bash
# cross.sh: build the agent for another platform and run its tests there,
# through an emulator, against the hub of the native build.
#
#   tests/cross.sh arm64      Linux arm64 (aarch64), under qemu-user
#   tests/cross.sh windows    Windows x86-64 (mingw-w64), under wine64
#
# Steps, each timed:
# 1. the platform's setup script (deploy/<platform>/setup.sh: the cross
#    compiler, the target's libraries, the emulator; idempotent);
# 2. the native hub: BUILD_DIR (default build/, as tests/run.sh builds
#    it; configured here when it is not yet), target branchsync-hub only;
# 3. configure and build CROSS_BUILD_DIR (default build-<platform>) with
#    the platform's toolchain file, -DBS_AGENT_ONLY=ON and
#    -DBS_HUB_BUILD_DIR=BUILD_DIR;
# 4. ctest -L <platform> there: the unit tests under the emulator and
#    tests/cross/ (the agent under the emulator, the native hub and a
#    throwaway PostgreSQL); then the tests' RESULT lines (figures such as
#    the agent's peak RSS).
#
# Environment: BUILD_DIR, CROSS_BUILD_DIR, JOBS (default 2), CTEST_ARGS
# (more ctest arguments).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PLATFORM=${1:-}
case "$PLATFORM" in
arm64)
	SETUP=$ROOT/deploy/arm64/setup.sh
	TOOLCHAIN=$ROOT/deploy/arm64/aarch64-linux-gnu.cmake
	;;
windows)
	# the libraries go to build-win/prefix, where the toolchain file
	# looks by default
	SETUP="$ROOT/deploy/windows/setup.sh $ROOT/build-win"
	TOOLCHAIN=$ROOT/deploy/windows/mingw-w64-x86_64.cmake
	;;
*)
	echo "cross: error: unknown platform \"$PLATFORM\"" >&2
	echo "cross: hint: usage: tests/cross.sh arm64|windows" >&2
	exit 1
	;;
esac
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
CROSS_BUILD_DIR=${CROSS_BUILD_DIR:-$ROOT/build-$PLATFORM}
JOBS=${JOBS:-2}

start=$(date +%s)
last=$start
step() {
	local now
	now=$(date +%s)
	echo "=== cross $PLATFORM: $* (previous step $((now - last)) s," \
		"total $((now - start)) s)"
	last=$now
}

step "setup"
# shellcheck disable=SC2086 # SETUP is a command and its argument
$SETUP

step "native hub ($BUILD_DIR)"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
	"$ROOT/deploy/install-deps.sh"
	cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DBUILD_TESTING=ON
fi
cmake --build "$BUILD_DIR" -j"$JOBS" --target branchsync-hub
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)

step "configure and build $CROSS_BUILD_DIR"
cmake -S "$ROOT" -B "$CROSS_BUILD_DIR" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON \
	-DBS_AGENT_ONLY=ON -DBS_CROSS_LABEL="$PLATFORM" \
	-DBS_HUB_BUILD_DIR="$BUILD_DIR"
cmake --build "$CROSS_BUILD_DIR" -j"$JOBS"

if [ "$PLATFORM" = windows ]; then
	# A wine prefix of the build's own, made before the tests so that
	# the first test does not pay for it.
	export WINEPREFIX=$CROSS_BUILD_DIR/wineprefix WINEDEBUG=-all
	step "wine prefix ($WINEPREFIX)"
	/usr/lib/wine/wine64 wineboot --init >/dev/null 2>&1 || true
	/usr/lib/wine/wineserver -w || true
fi

step "ctest -L $PLATFORM"
# shellcheck disable=SC2086 # CTEST_ARGS is a list of words on purpose
(cd "$CROSS_BUILD_DIR" &&
	ctest --output-on-failure -j"$JOBS" -L "$PLATFORM" ${CTEST_ARGS:-})
# The figures of the tests that passed (the agent's peak RSS among them).
grep -h '^RESULT ' "$CROSS_BUILD_DIR"/Testing/Temporary/LastTest*.log \
	2>/dev/null || true

step "done"
