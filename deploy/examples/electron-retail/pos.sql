-- The POS file of a desktop retail app, as the app creates it. Nothing
-- here is branchsync's: "branchsync-agent init" adds its log and triggers.
CREATE TABLE IF NOT EXISTS products (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    sku         TEXT,
    barcode     TEXT,
    price       INTEGER NOT NULL,          -- minor units
    category    TEXT,
    is_active   INTEGER NOT NULL DEFAULT 1,
    updated_at  TEXT,
    is_synced   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sales (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    invoice_no      TEXT NOT NULL,
    user_id         INTEGER,
    total           INTEGER NOT NULL,      -- minor units
    paid            INTEGER NOT NULL,
    change_due      INTEGER NOT NULL DEFAULT 0,
    payment_method  TEXT NOT NULL,
    customer_name   TEXT,
    status          TEXT NOT NULL DEFAULT 'paid',
    created_at      TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at      TEXT,
    is_synced       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sale_items (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    sale_id       INTEGER NOT NULL REFERENCES sales(id),
    product_id    INTEGER,
    product_name  TEXT NOT NULL,
    qty           INTEGER NOT NULL,
    price         INTEGER NOT NULL,
    subtotal      INTEGER NOT NULL,
    is_synced     INTEGER NOT NULL DEFAULT 0
);
-- The till's own settings: never replicated (no [table] section).
CREATE TABLE IF NOT EXISTS settings (
    key    TEXT PRIMARY KEY,
    value  TEXT
);
