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
missing=()
for p in wine64 nsis; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = \
		installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=()
	[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
	export DEBIAN_FRONTEND=noninteractive
	"${SUDO[@]}" apt-get update
	"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
"$HERE/build-deps.sh" "${1:-build-win}"
