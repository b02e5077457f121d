-- retail.sql: example POS schema (SQLite), as a till application creates it.
-- branchsync-agent captures transactions, transaction_items and payments
-- (direction = up); products, branch_prices and stock_allocations are master
-- data from the center (direction = down): the agent writes only the columns
-- it receives, so POS-only columns (products.store_id, products.stock) keep
-- their local values, and sets is_synced = 1. Money is integer minor units.
-- Load with: sqlite3 pos.db < retail.sql
CREATE TABLE IF NOT EXISTS products(
  id INTEGER PRIMARY KEY,
  store_id INTEGER,
  name TEXT NOT NULL,
  sku TEXT,
  barcode TEXT,
  price INTEGER NOT NULL,
  cost_price INTEGER,
  stock INTEGER NOT NULL DEFAULT 0,
  category TEXT,
  is_active INTEGER NOT NULL DEFAULT 1,
  created_at TEXT,
  updated_at TEXT,
  is_synced INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS transactions(
  id INTEGER PRIMARY KEY,
  store_id INTEGER,
  user_id INTEGER,
  total_cost INTEGER NOT NULL,
  payment_type TEXT,
  payment_method TEXT,
  received_amount INTEGER,
  change_amount INTEGER,
  customer_name TEXT,
  payment_status TEXT,
  created_at TEXT,
  updated_at TEXT,
  tax INTEGER,
  is_synced INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS transaction_items(
  id INTEGER PRIMARY KEY,
  transaction_id INTEGER NOT NULL REFERENCES transactions(id),
  product_id INTEGER,
  product_name TEXT,
  qty INTEGER NOT NULL,
  price INTEGER NOT NULL,
  subtotal INTEGER NOT NULL,
  is_synced INTEGER NOT NULL DEFAULT 0
);

-- Composite key example: one row per payment line of a sale.
CREATE TABLE IF NOT EXISTS payments(
  transaction_id INTEGER NOT NULL,
  line_no INTEGER NOT NULL,
  method TEXT NOT NULL,
  amount INTEGER NOT NULL,
  is_synced INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (transaction_id, line_no)
);

-- Master data per branch (down): this branch's price of a product, and the
-- stock the center allocates to it (the center lowers it as sales arrive).
CREATE TABLE IF NOT EXISTS branch_prices(
  product_id INTEGER PRIMARY KEY,
  price INTEGER NOT NULL,
  is_synced INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS stock_allocations(
  product_id INTEGER PRIMARY KEY,
  qty INTEGER NOT NULL,
  is_synced INTEGER NOT NULL DEFAULT 0
);
