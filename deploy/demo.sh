#!/usr/bin/env bash
# demo.sh: see branchsync move a branch's sales to head office, locally.
#
# Installs the dependencies, builds, starts a PostgreSQL of its own in
# ./run/pg (unix socket only; as root it runs as user "postgres"),
# creates the center schema (deploy/center/retail.sql), migrates the hub,
# adds branch "demo1", creates a POS SQLite file (deploy/pos/retail.sql),
# installs the agent's capture triggers, starts hub and agent, lets the
# POS simulator sell for ~15 seconds, waits until everything arrived and
# prints what the center holds. Everything it started is stopped on exit;
# each run starts over from an empty ./run/.
#
#   ./deploy/demo.sh
#
# Environment: DEMO_SECONDS (default 15), DEMO_RATE sales/s (default 40),
# DEMO_HUB_PORT (default 7450), DEMO_HTTP_PORT (the hub's operator page and
# /metrics, default 7452), DEMO_AGENT_HTTP_PORT (the agent's /status and
# /metrics, default 7453), DEMO_POSTGRES (a libpq conninfo of an existing,
# empty database to use instead of the embedded PostgreSQL), DEMO_KEEP=1
# (keep hub and agent running after the status, until Ctrl-C, to look at
# the operator page).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=$ROOT/run
BUILD=${BUILD_DIR:-$ROOT/build}
PGDIR=$RUN/pg
PGPORT=${DEMO_PG_PORT:-54329}
HUB_PORT=${DEMO_HUB_PORT:-7450}
HTTP_PORT=${DEMO_HTTP_PORT:-7452}
AGENT_HTTP_PORT=${DEMO_AGENT_HTTP_PORT:-7453}
SECONDS_OF_SALES=${DEMO_SECONDS:-15}
RATE=${DEMO_RATE:-40}
PY=/usr/bin/python3
HUB=$BUILD/hub/branchsync-hub
AGENT=$BUILD/agent/branchsync-agent

say() { printf '\n== %s\n' "$*"; }
die() {
	echo "demo: error: $*" >&2
	exit 1
}

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pids=()
pg_started=0
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "$pg_started" = 1 ]; then
		as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop \
			>/dev/null 2>&1 || true
	fi
	if [ "$rc" -ne 0 ]; then
		echo "demo: failed; logs are in $RUN" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in "$HUB_PORT:DEMO_HUB_PORT" "$HTTP_PORT:DEMO_HTTP_PORT" \
	"$AGENT_HTTP_PORT:DEMO_AGENT_HTTP_PORT"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/${p%%:*}") 2>/dev/null; then
		die "port ${p%%:*} is in use; set ${p#*:} to a free port"
	fi
done

say "installing dependencies"
"$ROOT/deploy/install-deps.sh"

say "building"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j2 --target branchsync-hub branchsync-agent

PGBIN=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$PGBIN/initdb" ]; then
	PGBIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d \
		2>/dev/null | sort -V | tail -n1)
fi

# A previous run that was killed may have left its PostgreSQL running.
if [ -f "$PGDIR/data/postmaster.pid" ] && [ -x "$PGBIN/pg_ctl" ]; then
	as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop \
		>/dev/null 2>&1 || true
fi
rm -rf "$RUN"
mkdir -p "$RUN"

if [ -n "${DEMO_POSTGRES:-}" ]; then
	CONNINFO=$DEMO_POSTGRES
	say "using the existing PostgreSQL: $CONNINFO"
else
	[ -x "$PGBIN/initdb" ] || die "PostgreSQL server not found (initdb)"
	say "starting PostgreSQL in $PGDIR"
	mkdir -p "$PGDIR"
	chmod 755 "$RUN" "$PGDIR"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$PGDIR"
	fi
	(cd "$PGDIR" && as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres \
		-A trust -E UTF8 --locale=C >"$PGDIR/initdb.log" 2>&1) ||
		die "initdb failed; see $PGDIR/initdb.log"
	(cd "$PGDIR" && as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" \
		-l "$PGDIR/postgres.log" -w \
		-o "-k $PGDIR -c listen_addresses='' -p $PGPORT" start >/dev/null)
	pg_started=1
	"$PGBIN/psql" -q -h "$PGDIR" -p "$PGPORT" -U postgres -d postgres \
		-c "CREATE DATABASE branchsync"
	CONNINFO="host=$PGDIR port=$PGPORT dbname=branchsync user=postgres"
fi
psql_c() { "$PGBIN/psql" -X -v ON_ERROR_STOP=1 -d "$CONNINFO" "$@"; }

say "creating the center schema and the branch"
psql_c -q -f "$ROOT/deploy/center/retail.sql"
cat >"$RUN/hub.ini" <<INI
[hub]
listen = tcp://127.0.0.1:$HUB_PORT
postgres = $CONNINFO
workers = 2
log_level = info
http_listen = 127.0.0.1:$HTTP_PORT

[table transactions]
[table transaction_items]
[table payments]
INI
"$HUB" migrate -c "$RUN/hub.ini"
KEY=$("$HUB" branch add demo1 -c "$RUN/hub.ini")
echo "branch demo1 added (its key is in $RUN/agent.ini)"

say "creating the POS file and installing capture"
POS=$RUN/demo1.db
sqlite3 "$POS" <"$ROOT/deploy/pos/retail.sql"
cat >"$RUN/agent.ini" <<INI
[agent]
branch = demo1
key = $KEY
database = $POS
hub = tcp://127.0.0.1:$HUB_PORT
poll_ms = 200
log_level = info
http_port = $AGENT_HTTP_PORT

[table transactions]
[table transaction_items]
[table payments]
INI
chmod 600 "$RUN/agent.ini"
"$AGENT" init -c "$RUN/agent.ini"

say "starting hub and agent (logs: $RUN/hub.log, $RUN/agent.log)"
"$HUB" run -c "$RUN/hub.ini" 2>>"$RUN/hub.log" &
pids+=($!)
"$AGENT" run -c "$RUN/agent.ini" 2>>"$RUN/agent.log" &
pids+=($!)

say "selling for ${SECONDS_OF_SALES} s at up to ${RATE} sales/s"
"$PY" "$ROOT/tests/lib/possim.py" --db "$POS" --sales 1000000 \
	--duration "$SECONDS_OF_SALES" --rate "$RATE" --seed 1

say "waiting until the branch's log is drained"
pending() {
	sqlite3 -cmd '.timeout 5000' "$POS" "SELECT count(*) FROM
	  _branchsync_log WHERE err IS NULL AND seq > (SELECT value FROM
	  _branchsync_meta WHERE name = 'acked_seq')"
}
for _ in $(seq 1 120); do
	n=$(pending)
	[ "$n" = 0 ] && break
	for pid in "${pids[@]}"; do
		kill -0 "$pid" 2>/dev/null || die "hub or agent exited; see $RUN"
	done
	sleep 1
done
[ "$(pending)" = 0 ] || die "the log did not drain within 120 s"
echo "drained"

say "branchsync-hub status"
# Exit 2 would mean a branch behind, silent or never seen: not after the
# drain, so any non-zero status fails the demo.
"$HUB" status -c "$RUN/hub.ini" || die "branchsync-hub status exited $?"

say "branchsync-agent status"
"$AGENT" status -c "$RUN/agent.ini"

say "the hub's metrics of branch demo1 (http://127.0.0.1:$HTTP_PORT/metrics)"
"$PY" - "$HTTP_PORT" <<'PY'
import sys
import urllib.request

opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
url = "http://127.0.0.1:%s/metrics" % sys.argv[1]
with opener.open(url, timeout=10) as r:
    for line in r.read().decode().splitlines():
        if line.startswith("branchsync_branch_") and "demo1" in line:
            print("  " + line)
PY

say "what arrived at the center"
psql_c -P footer=off -c "
SELECT b.code AS branch, t.tbl AS \"table\", t.n AS rows
FROM branchsync.branch b CROSS JOIN LATERAL (
  SELECT 'transactions' AS tbl, count(*) AS n FROM transactions
   WHERE branch_id = b.id
  UNION ALL SELECT 'transaction_items', count(*) FROM transaction_items
   WHERE branch_id = b.id
  UNION ALL SELECT 'payments', count(*) FROM payments
   WHERE branch_id = b.id) t ORDER BY 1, 2"
echo "at the branch:"
for t in transactions transaction_items payments; do
	printf '  %-18s %s rows\n' "$t" \
		"$(sqlite3 "$POS" "SELECT count(*) FROM $t")"
done
if [ "${DEMO_KEEP:-0}" = 1 ]; then
	say "running; operator page: http://127.0.0.1:$HTTP_PORT/ (Ctrl-C stops)"
	wait "${pids[@]}" || true
fi
say "done; stopping everything"
