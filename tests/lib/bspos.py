"""bspos: the POS SQLite files of the tests.

create_pos makes a POS file with the example schema (deploy/pos), the
sqlite_* functions read tables and queries of a POS file, sqlite_copy
takes a consistent copy, possim_run writes sales with the POS simulator
(tests/lib/possim.py) in this process. qi quotes an identifier and
sort_key orders rows that may hold NULLs, for the comparisons.
"""

import sqlite3

from bsbase import log, source_file


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
