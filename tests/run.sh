#!/usr/bin/env bash
# run.sh: build branchsync and run every test (unit and integration).
#
#   ./tests/run.sh            install deps, configure build/, build, ctest
#   BUILD_DIR=dir ./tests/run.sh   use another build folder
#   CTEST_ARGS="-L unit" ./tests/run.sh   pass extra arguments to ctest
#
# Integration tests start a throwaway PostgreSQL (initdb into a temp
# folder), real hub and agent processes and real SQLite files; they skip
# (ctest "Not Run") when PostgreSQL's initdb is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
JOBS=${JOBS:-2}

"$ROOT/deploy/install-deps.sh"

# shellcheck disable=SC2086 # CMAKE_ARGS is a list of words on purpose
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DBUILD_TESTING=ON ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$JOBS"

cd "$BUILD_DIR"
# shellcheck disable=SC2086 # CTEST_ARGS is a list of words on purpose
ctest --output-on-failure -j"$JOBS" ${CTEST_ARGS:-}
