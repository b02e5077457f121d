#!/bin/bash
# run.sh: build the libFuzzer targets and run each of them for a while.
#
#   tests/fuzz/run.sh [SECONDS] [BUILD_DIR]
#
# Configures a clang build with -DBS_FUZZ=ON in BUILD_DIR (build-fuzz/ by
# default), builds the targets and runs every one for SECONDS (default 60)
# with -max_total_time, two at a time, each on a copy of its committed
# corpus (tests/fuzz/corpus/<name>, so new finds do not land in the tree)
# under BUILD_DIR/fuzz-run/<target>/. Prints per target the runs executed,
# the coverage (cov:) and the corpus size at the end. Exits 1 if any target
# found a crash, a leak, a timeout (-timeout=10) or ran out of memory
# (-rss_limit_mb=2048), and prints the path of the reproducer; rerun it
# with BUILD_DIR/tests/fuzz/<target> <reproducer>.
set -u -o pipefail

SECONDS_PER_TARGET=${1:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${2:-$ROOT/build-fuzz}
JOBS=2
TARGETS="msg_decode msg_roundtrip hub_request http_query changes_apply"

case $SECONDS_PER_TARGET in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS] [BUILD_DIR]" >&2
	exit 2
	;;
esac

mkdir -p "$BUILD"
CC=${CC:-clang} cmake -S "$ROOT" -B "$BUILD" -DBS_FUZZ=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/fuzz-configure.log" 2>&1 || {
	cat "$BUILD/fuzz-configure.log" >&2
	echo "fuzz: could not configure $BUILD" >&2
	exit 1
}
# Build the fuzz targets only: the rest of the tree is not linked with
# the sanitizer runtimes in this configuration.
build_targets=""
for t in $TARGETS; do
	build_targets="$build_targets fuzz_$t"
done
# shellcheck disable=SC2086
cmake --build "$BUILD" -j"$JOBS" --target $build_targets >"$BUILD/fuzz-build.log" 2>&1 || {
	tail -n 40 "$BUILD/fuzz-build.log" >&2
	echo "fuzz: could not build the targets in $BUILD" >&2
	exit 1
}

RUN=$BUILD/fuzz-run
rm -rf "$RUN"
mkdir -p "$RUN"

# run_one TARGET: fuzz one target on a copy of its corpus; libFuzzer's exit
# status goes to $RUN/TARGET/rc.
run_one() {
	local t=$1 dir=$RUN/$1
	mkdir -p "$dir/corpus" "$dir/artifacts"
	cp "$ROOT/tests/fuzz/corpus/$t/"* "$dir/corpus/" 2>/dev/null
	"$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/" "$dir/corpus" \
		>"$dir/log" 2>&1
	echo $? >"$dir/rc"
}

running=0
for t in $TARGETS; do
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
	echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
	run_one "$t" &
	running=$((running + 1))
done
wait

status=0
printf '%-16s %12s %8s %8s  %s\n' target runs cov corpus result
for t in $TARGETS; do
	dir=$RUN/$t
	rc=$(cat "$dir/rc" 2>/dev/null || echo 1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -n 1 | cut -d' ' -f2)
	corp=$(ls "$dir/corpus" | wc -l)
	found=$(ls "$dir/artifacts" 2>/dev/null)
	if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
		result=ok
	else
		result="FAILED (exit $rc)"
		status=1
	fi
	printf '%-16s %12s %8s %8s  %s\n' "$t" "${runs:-?}" "${cov:-?}" "$corp" "$result"
done
for t in $TARGETS; do
	for a in "$RUN/$t/artifacts/"*; do
		[ -e "$a" ] || continue
		echo "fuzz: $t: reproducer $a (log $RUN/$t/log)"
		echo "fuzz:   rerun: $BUILD/tests/fuzz/fuzz_$t $a"
	done
	if [ "$(cat "$RUN/$t/rc" 2>/dev/null || echo 1)" -ne 0 ]; then
		grep -m 5 -E '^(==[0-9]+==ERROR|SUMMARY|.*\.c:[0-9]+: )' "$RUN/$t/log" |
			sed "s/^/fuzz: $t: /"
	fi
done
exit $status
