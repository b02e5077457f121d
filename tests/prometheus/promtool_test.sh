#!/bin/sh
# promtool_test.sh: checks deploy/prometheus with promtool (ctest
# unit.prometheus): the example configuration, the alerting rules and
# their unit tests (alerts_test.yml).
#
#   tests/prometheus/promtool_test.sh [DIR]   DIR defaults to deploy/prometheus
#
# Exit 0 pass, 1 fail, 77 skip (promtool not installed: Debian package
# "prometheus", which deploy/install-deps.sh installs).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/../../deploy/prometheus}

if ! command -v promtool >/dev/null 2>&1; then
	echo "SKIP: promtool not found (install the Debian package prometheus)"
	exit 77
fi

promtool --version 2>&1 | head -n 1
rc=0
run() {
	echo "--- $*"
	if ! "$@"; then
		echo "FAIL: $*"
		rc=1
	fi
}
run promtool check config "$dir/prometheus.yml"
run promtool check rules "$dir/alerts.yml"
run promtool test rules "$dir/alerts_test.yml"
if [ "$rc" -eq 0 ]; then
	echo "promtool: config, rules and rule tests ok"
fi
exit "$rc"
