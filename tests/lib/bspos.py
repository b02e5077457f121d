"""bspos: the POS SQLite files of the tests.

create_pos makes a POS file with the example schema (deploy/pos), the
sqlite_* functions read tables and queries of a POS file, sqlite_copy
takes a consistent copy, possim_run writes sales with the POS simulator
(tests/lib/possim.py) in this process, poswrite_run with bs-poswrite, a
program of the platform under test (tests/tools/bs-poswrite.c). qi quotes an identifier and
sort_key orders rows that may hold NULLs, for the comparisons.
"""

import json
import sqlite3

from bsbase import Failure, log, source_file
from bsproc import command, run_cmd


def create_pos(path):
    """A new POS SQLite file with the example schema (deploy/pos)."""
    with open(source_file("deploy", "pos", "retail.sql")) as f:
        sql = f.read()
    c = sqlite3.connect(path)
    c.executescript(sql)
    c.close()


def sqlite_connect(path, timeout=30):
    c = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    return c


def pos_meta(path):
    c = sqlite_connect(path)
    try:
        return dict(c.execute("SELECT name, value FROM _branchsync_meta"))
    finally:
        c.close()


def sqlite_columns(path, table):
    """Column names of a POS table in declared order, without is_synced."""
    c = sqlite_connect(path)
    try:
        cols = [r[1] for r in c.execute('PRAGMA table_info("%s")'
                                        % table.replace('"', '""'))]
    finally:
        c.close()
    return [x for x in cols if x != "is_synced"]


def qi(name):
    return '"' + name.replace('"', '""') + '"'


def sort_key(row):
    return tuple((0, "") if v is None else (1, type(v).__name__, v)
                 for v in row)


def sqlite_rows(path, table, cols=None):
    """All rows of a POS table as a sorted list of tuples."""
    cols = cols or sqlite_columns(path, table)
    c = sqlite_connect(path)
    try:
        rows = [tuple(r) for r in c.execute(
            "SELECT %s FROM %s" % (", ".join(map(qi, cols)), qi(table)))]
    finally:
        c.close()
    return sorted(rows, key=sort_key)


def sqlite_copy(src, dst):
    """Consistent copy of a SQLite file (the backup API), like a backup
    tool would take; also used to put a backup back in place."""
    a = sqlite3.connect(src, timeout=30)
    b = sqlite3.connect(dst, timeout=30)
    try:
        a.backup(b)
    finally:
        b.close()
        a.close()


def sqlite_one(path, sql, params=()):
    """First row of a query on a POS file (None when there is none)."""
    c = sqlite_connect(path)
    try:
        return c.execute(sql, params).fetchone()
    finally:
        c.close()


def sqlite_all(path, sql, params=()):
    """Every row of a query on a POS file."""
    c = sqlite_connect(path)
    try:
        return c.execute(sql, params).fetchall()
    finally:
        c.close()


def possim_run(db, **kw):
    """Runs the POS simulator (tests/lib/possim.py) in this process."""
    import possim
    st = possim.simulate(db, **kw)
    log("possim: %s" % st)
    return st


def poswrite_argv(db, sales, seed=1, rate=None):
    """The command line of bs-poswrite writing `sales` sales (seed) into
    db, at most `rate` per second when given."""
    argv = command("bs-poswrite") + ["--db", db, "--sales", str(sales),
                                     "--seed", str(seed)]
    return argv + (["--rate", str(rate)] if rate else [])


def poswrite_run(db, sales, seed=1, timeout=300):
    """Writes sales with bs-poswrite and waits for it; returns its counts
    (sales, items, payments, seconds)."""
    r = run_cmd(poswrite_argv(db, sales, seed), timeout)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        raise Failure("bs-poswrite exited %d: %s" % (r.returncode,
                                                     r.stderr.strip()))
    st = json.loads(lines[-1])
    log("bs-poswrite: %s" % st)
    return st
