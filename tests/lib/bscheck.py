"""bscheck: row comparisons between a POS file and the center.

Up tables (POS -> center): compare_table checks that a POS table and the
center's rows of its branch are equal column by column, each once;
compare_keys does the same for a set of keys. Down tables (center -> POS):
down_rows, compare_down and down_converged compare the center's rows in
a branch's scope with the POS table over the columns both have. Values
of either side are normalized (pg_norm, timestamps with 'T') so that
equal data compares equal.
"""

import datetime
import decimal

from bsbase import DOWN_TABLES, Failure, check_eq, log
from bspos import (qi, sort_key, sqlite_columns, sqlite_connect,
                   sqlite_rows)


def pg_norm(v):
    if isinstance(v, datetime.datetime):
        s = v.strftime("%Y-%m-%d %H:%M:%S")
        return s + (".%06d" % v.microsecond if v.microsecond else "")
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, memoryview):
        return bytes(v)
    if isinstance(v, bool):
        return int(v)
    return v


def pg_rows(pg, table, cols, branch_id, schema="public"):
    """Rows of a center table for one branch, normalized to compare with
    SQLite: timestamps as 'YYYY-MM-DD HH:MM:SS' text, numerics as int."""
    sql = "SELECT %s FROM %s.%s WHERE branch_id = %%s" % (
        ", ".join(map(qi, cols)), qi(schema), qi(table))
    rows = [tuple(pg_norm(v) for v in r)
            for r in pg.psql(sql, (branch_id,))]
    return sorted(rows, key=sort_key)


def compare_table(path, pg, table, branch_id):
    """Checks that a POS table and its center copy for branch_id hold the
    same rows, column by column, each exactly once. Returns the count."""
    cols = sqlite_columns(path, table)
    a = sqlite_rows(path, table, cols)
    b = pg_rows(pg, table, cols, branch_id)
    if a != b:
        sa, sb = set(a), set(b)
        only_pos = sorted(sa - sb, key=sort_key)[:5]
        only_pg = sorted(sb - sa, key=sort_key)[:5]
        raise Failure(
            "table %s differs (POS %d rows, center %d rows for branch_id %d)"
            "\n  columns: %s\n  only in POS (first 5): %s\n  only in center"
            " (first 5): %s" % (table, len(a), len(b), branch_id, cols,
                                only_pos, only_pg))
    keycols = pg_key_columns(pg, table)
    dups = pg.psql("SELECT count(*) FROM (SELECT 1 FROM public.%s WHERE "
                   "branch_id = %%s GROUP BY %s HAVING count(*) > 1) d"
                   % (qi(table), ", ".join(map(qi, keycols))),
                   (branch_id,))[0][0]
    check_eq(dups, 0, "%s: no key appears twice at the center" % table)
    log("ok: %s: %d rows equal column by column (%s)"
        % (table, len(a), ", ".join(cols)))
    return len(a)


def pg_key_columns(pg, table):
    rows = pg.psql(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
        "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE "
        "i.indrelid = %s::regclass AND i.indisprimary ORDER BY "
        "array_position(i.indkey::int2[], a.attnum)", ("public." + table,))
    return [r[0] for r in rows]


def compare_keys(path, pg, branch_id, keys):
    """For each (table, key): the POS row and the center row are equal,
    or both absent. Returns the number of keys checked."""
    by_table = {}
    for tbl, key in keys:
        by_table.setdefault(tbl, []).append(key)
    for tbl, klist in sorted(by_table.items()):
        cols = sqlite_columns(path, tbl)
        kcols = [x for x in pg_key_columns(pg, tbl) if x != "branch_id"]
        where = " AND ".join("%s = ?" % qi(x) for x in kcols)
        c = sqlite_connect(path)
        bad = []
        try:
            for key in klist:
                a = c.execute("SELECT %s FROM %s WHERE %s" % (
                    ", ".join(map(qi, cols)), qi(tbl), where),
                    key).fetchall()
                b = pg.psql("SELECT %s FROM public.%s WHERE branch_id = %%s "
                            "AND %s" % (", ".join(map(qi, cols)), qi(tbl),
                                        where.replace("?", "%s")),
                            (branch_id,) + tuple(key))
                b = [tuple(pg_norm(v) for v in r) for r in b]
                a = [tuple(r) for r in a]
                if a != b:
                    bad.append((key, a, b))
        finally:
            c.close()
        if bad:
            raise Failure("%s: %d of %d keys differ between POS and center;"
                          " first: key %r POS %r center %r"
                          % (tbl, len(bad), len(klist), *bad[0]))
        log("ok: %s: %d changed keys equal at the center" % (tbl, len(klist)))
    return len(keys)


def pg_columns(pg, table, schema="public"):
    """Column names of a center table in declared order."""
    return [r[0] for r in pg.psql(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        ("%s.%s" % (qi(schema), qi(table)),))]


def down_columns(path, pg, table, scope=None):
    """The columns a POS table and its center table both have (POS order),
    without is_synced and the scope column."""
    scope = DOWN_TABLES.get(table, "all") if scope is None else scope
    center = set(pg_columns(pg, table)) - {scope}
    return [c for c in sqlite_columns(path, table) if c in center]


_T_SEEN = set()


def _pos_norm(v, table=None, col=None):
    # to_jsonb() writes a timestamp as 2024-03-01T08:00:00; the POS writes
    # 2024-03-01 08:00:00. Both denote the same instant, and SQLite's date
    # functions read both; compare them as the same value (logged once).
    if isinstance(v, str) and len(v) >= 19 and v[10] == "T" and \
            v[4] == "-" and v[7] == "-" and v[13] == ":" and v[16] == ":":
        if (table, col) not in _T_SEEN:
            _T_SEEN.add((table, col))
            log("note: %s.%s arrived in ISO form with 'T' (%r)"
                % (table, col, v))
        return v[:10] + " " + v[11:]
    return v


def down_rows(path, pg, table, branch_id, scope=None, cols=None,
              where_pos="", where_pg=""):
    """(POS rows, center rows for branch_id) of a down table over the
    columns both have, each a sorted list of normalized tuples."""
    scope = DOWN_TABLES.get(table, "all") if scope is None else scope
    cols = cols or down_columns(path, pg, table, scope)
    c = sqlite_connect(path)
    try:
        a = [tuple(_pos_norm(v, table, col) for v, col in zip(r, cols))
             for r in c.execute("SELECT %s FROM %s %s" % (
                 ", ".join(map(qi, cols)), qi(table), where_pos))]
    finally:
        c.close()
    conds = ([] if scope == "all" else
             ["%s = %d" % (qi(scope), int(branch_id))])
    if where_pg:
        conds.append(where_pg)
    sql = "SELECT %s FROM public.%s %s" % (
        ", ".join(map(qi, cols)), qi(table),
        ("WHERE " + " AND ".join(conds)) if conds else "")
    b = [tuple(pg_norm(v) for v in r) for r in pg.psql(sql)]
    return sorted(a, key=sort_key), sorted(b, key=sort_key)


def compare_down(path, pg, table, branch_id, scope=None, quiet=False,
                 **kw):
    """Checks that a POS table holds exactly the center's rows of a down
    table for branch_id, column by column over the columns both have.
    Returns the row count."""
    scope = DOWN_TABLES.get(table, "all") if scope is None else scope
    cols = down_columns(path, pg, table, scope)
    a, b = down_rows(path, pg, table, branch_id, scope, cols, **kw)
    if a != b:
        sa, sb = set(a), set(b)
        raise Failure(
            "down table %s differs (POS %d rows, center %d rows for branch "
            "%d, scope %s)\n  columns: %s\n  only in POS (first 5): %s\n"
            "  only in center (first 5): %s"
            % (table, len(a), len(b), branch_id, scope, cols,
               sorted(sa - sb, key=sort_key)[:5],
               sorted(sb - sa, key=sort_key)[:5]))
    if not quiet:
        log("ok: %s: %d rows equal to the center's column by column (%s)"
            % (table, len(a), ", ".join(cols)))
    return len(a)


def down_converged(path, pg, branch_id, tables=None):
    """True when every down table of the POS equals the center's rows."""
    for t in (tables or DOWN_TABLES):
        a, b = down_rows(path, pg, t, branch_id)
        if a != b:
            return False
    return True
