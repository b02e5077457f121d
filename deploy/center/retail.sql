-- retail.sql: head-office (PostgreSQL) side of the example retail schema.
--
-- Upstream (branch -> head office): transactions, transaction_items,
-- payments. Each holds the rows of every branch: branch_id
-- (= branchsync.branch.id) comes first and is part of the primary key, so
-- the integer ids of different branches never collide. The columns are
-- those of the POS tables (deploy/pos/retail.sql) minus the branch-local
-- is_synced flag; SQLite INTEGER becomes bigint, TEXT becomes text, and
-- created_at/updated_at become timestamp (the POS writes
-- 'YYYY-MM-DD HH:MM:SS'). Foreign keys between replicated tables are
-- DEFERRABLE INITIALLY DEFERRED: the hub applies a batch table by table
-- and they are checked at COMMIT.
--
--
-- Downstream (head office -> branches; "direction = down" in hub.ini):
-- products (chain-wide, scope all), branch_prices and stock_allocations
-- (one row per branch and product, scope branch_id). The hub sends their
-- columns minus the scope column; branches key them by product.
--
-- Central stock: stock_allocations.qty is moved by the sales the branches
-- report (triggers on transaction_items below), as deltas, so it is never
-- overwritten by a branch's own number.
--
-- Load with: psql -v ON_ERROR_STOP=1 -f retail.sql DBNAME

BEGIN;

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

-- Master data, chain-wide: every branch receives every row.
CREATE TABLE IF NOT EXISTS public.products (
    id          bigint  PRIMARY KEY,
    name        text    NOT NULL,
    sku         text,
    barcode     text,
    price       bigint  NOT NULL,       -- minor units, never float
    cost_price  bigint,
    category    text,
    is_active   bigint  NOT NULL DEFAULT 1,
    created_at  timestamp,
    updated_at  timestamp
);

-- A branch's own price of a product; only that branch receives the row.
CREATE TABLE IF NOT EXISTS public.branch_prices (
    branch_id   integer NOT NULL,
    product_id  bigint  NOT NULL,
    price       bigint  NOT NULL,
    PRIMARY KEY (branch_id, product_id)
);

-- The stock head office allocates to a branch, lowered by its sales.
CREATE TABLE IF NOT EXISTS public.stock_allocations (
    branch_id   integer NOT NULL,
    product_id  bigint  NOT NULL,
    qty         bigint  NOT NULL,
    PRIMARY KEY (branch_id, product_id)
);

-- stock_move adds the summed deltas to the allocations. A sale of a
-- product with no allocation creates the row with the negative quantity:
-- the sale happened, head office sees the shortfall. It runs with its
-- owner's rights (SECURITY DEFINER, fixed search_path): the hub's role
-- writes sale lines, never the allocations themselves (grants.sql).
CREATE OR REPLACE FUNCTION public.stock_move(d public.stock_allocations[])
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    INSERT INTO public.stock_allocations AS s (branch_id, product_id, qty)
    SELECT branch_id, product_id, sum(qty) FROM unnest(d)
     WHERE product_id IS NOT NULL GROUP BY branch_id, product_id
    HAVING sum(qty) <> 0
    ON CONFLICT (branch_id, product_id) DO UPDATE SET qty = s.qty + EXCLUDED.qty
$$;

-- Statement-level triggers with transition tables: the hub applies a
-- batch with one statement per table, so a batch of N sale lines moves
-- each (branch, product) once instead of N times (and writes one change
-- record for it). A re-sent line (same qty and product) moves nothing.
-- It runs with its owner's rights too, so that whoever writes sale lines
-- needs no right to call stock_move.
CREATE OR REPLACE FUNCTION public.transaction_items_stock() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM public.stock_move(array(
            SELECT (n.branch_id, n.product_id, -n.qty)::public.stock_allocations
              FROM new_rows n));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM public.stock_move(array(
            SELECT (o.branch_id, o.product_id, o.qty)::public.stock_allocations
              FROM old_rows o));
    ELSE
        -- Give back the old line, take the new one; when product and
        -- branch are unchanged the two sum to the qty difference.
        PERFORM public.stock_move(array(
            SELECT (o.branch_id, o.product_id, o.qty)::public.stock_allocations
              FROM old_rows o
            UNION ALL
            SELECT (n.branch_id, n.product_id, -n.qty)::public.stock_allocations
              FROM new_rows n));
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS transaction_items_stock_ins ON public.transaction_items;
CREATE TRIGGER transaction_items_stock_ins AFTER INSERT ON public.transaction_items
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.transaction_items_stock();
DROP TRIGGER IF EXISTS transaction_items_stock_upd ON public.transaction_items;
CREATE TRIGGER transaction_items_stock_upd AFTER UPDATE ON public.transaction_items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.transaction_items_stock();
DROP TRIGGER IF EXISTS transaction_items_stock_del ON public.transaction_items;
CREATE TRIGGER transaction_items_stock_del AFTER DELETE ON public.transaction_items
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.transaction_items_stock();

-- A function runs with its owner's rights only for those who may call it:
-- PostgreSQL grants EXECUTE to PUBLIC by default, so any role could move
-- stock with stock_move, or write through a trigger of its own that
-- calls transaction_items_stock. Firing the triggers above needs no
-- EXECUTE right.
REVOKE EXECUTE ON FUNCTION public.stock_move(public.stock_allocations[])
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION public.transaction_items_stock() FROM PUBLIC;

COMMIT;
