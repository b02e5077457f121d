#!/bin/sh
# build-installer.sh: the Windows installer of branchsync-agent,
# branchsync-agent-setup-<version>.exe, built with NSIS (Debian package
# nsis) from installer.nsi.
#
#   deploy/windows/build-installer.sh [BUILD_DIR]
#
# BUILD_DIR (default: build-win/agent at the top of the source tree) is the
# agent's Windows cross build. It is configured first if it is not yet
# (toolchain file mingw-w64-x86_64.cmake, BS_AGENT_ONLY=ON, Release; the
# libraries of build-deps.sh), and the agent is built (or found up to
# date). The installer holds the agent stripped of its debug information
# and agent.ini beside this script as the example configuration, and is
# written into BUILD_DIR; its path is the last line printed.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$TOP/build-win/agent}

for tool in makensis cmake x86_64-w64-mingw32-strip; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "build-installer.sh: $tool not found (apt-get install nsis" \
		     "cmake ninja-build gcc-mingw-w64-x86-64)" >&2
		exit 1
	fi
done
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
	cmake -S "$TOP" -B "$BUILD" -G Ninja \
	      -DCMAKE_TOOLCHAIN_FILE="$HERE/mingw-w64-x86_64.cmake" \
	      -DBS_AGENT_ONLY=ON -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD" --target branchsync-agent
BUILD=$(cd "$BUILD" && pwd)

VERSION=$(sed -n 's/^project(branchsync VERSION \([0-9.]*\).*/\1/p' \
              "$TOP/CMakeLists.txt")
STAGE=$BUILD/installer
OUT=$BUILD/branchsync-agent-setup-$VERSION.exe
mkdir -p "$STAGE"
x86_64-w64-mingw32-strip -o "$STAGE/branchsync-agent.exe" \
	"$BUILD/agent/branchsync-agent.exe"
makensis -V2 -DVERSION="$VERSION" -DAGENT_EXE="$STAGE/branchsync-agent.exe" \
	-DEXAMPLE_INI="$HERE/agent.ini" -DOUTFILE="$OUT" "$HERE/installer.nsi"
echo "$OUT"
