-- retail.sql: head-office (PostgreSQL) side of the example retail schema.
--
-- Each replicated table holds the rows of every branch: branch_id
-- (= branchsync.branch.id) comes first and is part of the primary key, so
-- the integer ids of different branches never collide. The columns are
-- those of the POS tables (deploy/pos/retail.sql) minus the branch-local
-- is_synced flag; SQLite INTEGER becomes bigint, TEXT becomes text, and
-- created_at/updated_at become timestamp (the POS writes
-- 'YYYY-MM-DD HH:MM:SS'). Foreign keys between replicated tables are
-- DEFERRABLE INITIALLY DEFERRED: the hub applies a batch table by table
-- and they are checked at COMMIT.
--
-- Load with: psql -v ON_ERROR_STOP=1 -f retail.sql DBNAME

BEGIN;

CREATE TABLE IF NOT EXISTS public.products (
    branch_id   integer NOT NULL,
    id          bigint  NOT NULL,
    store_id    bigint,
    name        text    NOT NULL,
    sku         text,
    barcode     text,
    price       bigint  NOT NULL,       -- minor units, never float
    cost_price  bigint,
    stock       bigint  NOT NULL DEFAULT 0,
    category    text,
    is_active   bigint  NOT NULL DEFAULT 1,
    created_at  timestamp,
    updated_at  timestamp,
    PRIMARY KEY (branch_id, id)
);

CREATE TABLE IF NOT EXISTS public.transactions (
    branch_id       integer NOT NULL,
    id              bigint  NOT NULL,
    store_id        bigint,
    user_id         bigint,
    total_cost      bigint  NOT NULL,
    payment_type    text,
    payment_method  text,
    received_amount bigint,
    change_amount   bigint,
    customer_name   text,
    payment_status  text,
    created_at      timestamp,
    updated_at      timestamp,
    tax             bigint,
    PRIMARY KEY (branch_id, id)
);

CREATE TABLE IF NOT EXISTS public.transaction_items (
    branch_id      integer NOT NULL,
    id             bigint  NOT NULL,
    transaction_id bigint  NOT NULL,
    product_id     bigint,
    product_name   text,
    qty            bigint  NOT NULL,
    price          bigint  NOT NULL,
    subtotal       bigint  NOT NULL,
    PRIMARY KEY (branch_id, id),
    FOREIGN KEY (branch_id, transaction_id)
        REFERENCES public.transactions (branch_id, id)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX IF NOT EXISTS transaction_items_transaction
    ON public.transaction_items (branch_id, transaction_id);

CREATE TABLE IF NOT EXISTS public.payments (
    branch_id      integer NOT NULL,
    transaction_id bigint  NOT NULL,
    line_no        bigint  NOT NULL,
    method         text    NOT NULL,
    amount         bigint  NOT NULL,
    PRIMARY KEY (branch_id, transaction_id, line_no),
    FOREIGN KEY (branch_id, transaction_id)
        REFERENCES public.transactions (branch_id, id)
        DEFERRABLE INITIALLY DEFERRED
);

COMMIT;
