-- The SQLite file of a finance app that runs beside the POS. Its rows
-- carry the app's own branch code and UUID text keys.
CREATE TABLE IF NOT EXISTS journal_entries (
    id          TEXT PRIMARY KEY,          -- UUID text
    branch_id   TEXT NOT NULL,             -- the app's branch code, 'JKT-01'
    account     TEXT NOT NULL,
    amount      INTEGER NOT NULL,          -- minor units
    currency    TEXT NOT NULL DEFAULT 'IDR',
    memo        TEXT,
    posted_at   TEXT NOT NULL,             -- ISO 8601 with offset
    synced_at   TEXT,                      -- stamped by the app itself
    is_synced   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS cash_counts (
    id          TEXT PRIMARY KEY,          -- UUID text
    branch_id   TEXT NOT NULL,
    counted_by  TEXT NOT NULL,
    amount      INTEGER NOT NULL,
    counted_at  TEXT NOT NULL,
    synced_at   TEXT,
    is_synced   INTEGER NOT NULL DEFAULT 0
);
