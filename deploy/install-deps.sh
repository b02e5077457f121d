#!/usr/bin/env bash
# install-deps.sh: install what branchsync needs to build and test on
# Debian 12. Idempotent: when every package is already installed it does
# nothing (no "apt-get update"), so running it again is fast.
set -euo pipefail

PACKAGES=(
	build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
	libnng-dev libmsgpack-dev libsqlite3-dev libpq-dev
	libssl-dev libmbedtls-dev libjansson-dev libcrypt-dev postgresql-15 python3 python3-psycopg2
	python3-msgpack
	sqlite3
	# test tools: promtool checks deploy/prometheus (unit.prometheus);
	# headless Chromium shows the hub's page (integration.web_page)
	prometheus chromium
)
# node and npm run playwright-core for integration.web_page. A node that is
# already there (for example NodeSource's, which brings its own npm) is
# kept: Debian's npm would conflict with it.
if ! command -v node >/dev/null 2>&1; then
	PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	if [ "$status" != "installed" ]; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages already installed"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	echo "install-deps: error: missing packages: ${missing[*]}" >&2
	echo "install-deps: hint: run this script as root or install sudo" >&2
	exit 1
fi

echo "install-deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
