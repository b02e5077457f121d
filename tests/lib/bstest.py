"""bstest: the harness of branchsync's integration tests.

Everything here is real: a throwaway PostgreSQL cluster (initdb into a
temporary folder, unix socket only, stopped at exit), the real
branchsync-hub and branchsync-agent binaries as subprocesses, real SQLite
POS files. Network traffic stays on loopback.

A test script looks like:

    import bstest
    def main(env):
        pg = env.postgres()
        hub = env.hub(pg)
        ...
        bstest.check(a == b, "what was checked")
    bstest.run(main)

Exit codes: 0 pass, 1 fail, 77 skip (ctest SKIP_RETURN_CODE). On failure
the tails of the hub, agent and PostgreSQL logs are printed. Set
BS_KEEP_TMP=1 to keep the temporary folders for a post-mortem.

Binaries come from BS_BUILD_DIR (ctest sets it), else <source>/build; a
cross build's tests take the hub from BS_HUB_BUILD_DIR and run the agent
behind BS_AGENT_RUNNER (see bsbase).
Only the standard library, psycopg2 and msgpack are used; run with the
system python3 (/usr/bin/python3), which has python3-psycopg2.

The harness is split by job; this module re-exports their names, so a
test needs only `import bstest`:

    bsbase        paths, BS_TIME_SCALE, Skip, Failure, log, check, check_eq
    bsproc        Proc, run_cmd, binary, command, free_port, port_open,
                  wait_until, peak_rss_kb
    bspg          Postgres, pg_bindir
    bsdaemons     Hub, Agent, setup_center, parse_prom
    bspos         POS SQLite files: create_pos, sqlite_*, possim_run,
                  poswrite_run
    bscheck       row comparisons POS <-> center: compare_table,
                  compare_keys, compare_down, down_rows, pg_rows
    bsinvariants  log_state, check_replicated, check_synced_rows,
                  check_invariants, tally, report (the RESULT line)
    bsdown        down_center, down_agent, seed_*, wait_down_converged
    bsfault       the fault scenarios' set-up: FaultRun, PosWriter, proxy
    bsenv         Env, run
"""

# The names every test and benchmark uses, from the modules that define them.
# flake8: noqa (F401: re-exports)
from bsbase import (AGENT_RUNNER, BUILD_DIR, DOWN_TABLES, Failure, HERE,
                    HUB_BUILD_DIR, KEEP_TMP, SKIP, SOURCE_DIR, Skip,
                    TIME_SCALE, UPSTREAM_TABLES, check, check_eq, log,
                    scaled, source_file)
from bsproc import (Proc, binary, command, free_port, peak_rss_kb, port_open,
                    run_cmd, wait_until)
from bspg import Postgres, pg_bindir
from bsdaemons import Agent, Hub, PROM_SAMPLE, parse_prom, setup_center
from bspos import (create_pos, pos_meta, possim_run, poswrite_argv,
                   poswrite_run, sqlite_all, sqlite_columns, sqlite_connect,
                   sqlite_copy, sqlite_one, sqlite_rows)
from bscheck import (compare_down, compare_keys, compare_table, down_columns,
                     down_converged, down_rows, pg_columns, pg_key_columns,
                     pg_rows)
from bsinvariants import (check_all_synced, check_invariants,
                          check_only_marker, check_replicated, check_stock,
                          check_synced_rows, hub_totals, log_state,
                          pending_keys, report, tally)
from bsdown import (down_agent, down_center, feed_count, seed_branch_rows,
                    seed_products, wait_down_converged)
from bsfault import FaultRun, PosWriter, proxy, start_writer
from bsenv import Env, run
