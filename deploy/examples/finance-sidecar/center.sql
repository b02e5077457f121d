-- Head office tables for the finance app (PostgreSQL). The two tables keep
-- the app's text branch_id in the two ways branchsync supports.

-- (a) branchsync's integer branch_id; the app's code stored as
-- branch_code (hub.ini: columns = branch_id:branch_code).
CREATE TABLE IF NOT EXISTS public.journal_entries (
    branch_id    integer NOT NULL,
    id           uuid NOT NULL,
    branch_code  text NOT NULL,
    account      text NOT NULL,
    amount       bigint NOT NULL,
    currency     text NOT NULL,
    memo         text,
    posted_at    timestamptz NOT NULL,
    PRIMARY KEY (branch_id, id)
);

-- (b) the app's branch_id kept as it is; branchsync's id in
-- origin_branch (hub.ini: branch_column = origin_branch).
CREATE TABLE IF NOT EXISTS public.cash_counts (
    origin_branch  integer NOT NULL,
    id             uuid NOT NULL,
    branch_id      text NOT NULL,
    counted_by     text NOT NULL,
    amount         bigint NOT NULL,
    counted_at     timestamptz NOT NULL,
    PRIMARY KEY (origin_branch, id)
);
