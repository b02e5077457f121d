#!/usr/bin/env bash
# setup.sh: what building and testing the Windows agent needs on Debian 12:
# the mingw-w64 cross toolchain and the agent's libraries built from
# Debian's source packages (build-deps.sh, into BUILD_DIR/prefix), wine64
# to run the Windows programs in tests, and nsis for the installer.
#
#   deploy/windows/setup.sh [BUILD_DIR]     (default: build-win)
#
# As root, or with sudo. Idempotent: what is installed or built is kept.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=deploy/apt.sh
. "$HERE/../apt.sh"
apt_missing wine64 nsis
if [ ${#MISSING[@]} -gt 0 ]; then
	apt_install "windows setup" "${MISSING[@]}"
fi
"$HERE/build-deps.sh" "${1:-build-win}"
