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

# shellcheck source=deploy/apt.sh
. "$(dirname "$0")/apt.sh"
apt_missing "${PACKAGES[@]}"
if [ ${#MISSING[@]} -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages already installed"
	exit 0
fi
apt_install install-deps "${MISSING[@]}"
