-- Head office tables for the desktop retail app (PostgreSQL). Run before
-- "branchsync-hub migrate", which installs the change feed on products.
CREATE TABLE IF NOT EXISTS public.products (
    id          bigint PRIMARY KEY,
    name        text NOT NULL,
    sku         text,
    barcode     text,
    price       bigint NOT NULL,
    category    text,
    is_active   integer NOT NULL DEFAULT 1,
    updated_at  text
);
-- Sales: the branch's id first in the key, so every branch's id 1 is its
-- own row.
CREATE TABLE IF NOT EXISTS public.sales (
    branch_id       integer NOT NULL,
    id              bigint NOT NULL,
    invoice_no      text NOT NULL,
    user_id         bigint,
    total           bigint NOT NULL,
    paid            bigint NOT NULL,
    change_due      bigint NOT NULL DEFAULT 0,
    payment_method  text NOT NULL,
    customer_name   text,
    status          text NOT NULL,
    created_at      text NOT NULL,
    updated_at      text,
    received_at     timestamptz NOT NULL DEFAULT now(),  -- center only
    PRIMARY KEY (branch_id, id)
);
CREATE TABLE IF NOT EXISTS public.sale_items (
    branch_id     integer NOT NULL,
    id            bigint NOT NULL,
    sale_id       bigint NOT NULL,
    product_id    bigint,
    product_name  text NOT NULL,
    qty           integer NOT NULL,
    price         bigint NOT NULL,
    subtotal      bigint NOT NULL,
    PRIMARY KEY (branch_id, id),
    FOREIGN KEY (branch_id, sale_id) REFERENCES public.sales (branch_id, id)
        DEFERRABLE INITIALLY DEFERRED
);
