-- grants.sql: the rights "branchsync-hub run" needs, for a role that owns
-- nothing and is not a superuser. The schema's owner runs
-- "branchsync-hub migrate" and "branch add|rotate-key|disable|enable";
-- the hub and the other commands (status, rejects, conflicts) can run as
-- this role.
--
--   createuser branchsync_hub        # or CREATE ROLE ... LOGIN PASSWORD
--   psql -v ON_ERROR_STOP=1 -d DB -f deploy/center/grants.sql
--
-- then postgres = "... user=branchsync_hub" in hub.ini. Rerun it after a
-- "migrate" that adds tables. The replicated tables below are those of
-- deploy/center/retail.sql: list yours.

GRANT USAGE ON SCHEMA branchsync TO branchsync_hub;

-- Read only: the schema version, the branches, their tills and their
-- keys' hashes (changed by the owner's "branch" and "till" commands), the
-- change feed (written by the down tables' triggers).
GRANT SELECT ON branchsync.schema_version, branchsync.branch,
    branchsync.till, branchsync.change TO branchsync_hub;

-- What the hub records: watermarks, status, rejects, conflicts, backlog
-- history.
GRANT SELECT, INSERT, UPDATE, DELETE ON branchsync.watermark,
    branchsync.branch_status, branchsync.reject, branchsync.conflict,
    branchsync.backlog_sample TO branchsync_hub;
GRANT USAGE ON SEQUENCE branchsync.reject_id_seq,
    branchsync.conflict_id_seq TO branchsync_hub;

-- Up tables ([table NAME] of hub.ini): applied rows, deletes, conflict
-- resolutions.
GRANT SELECT, INSERT, UPDATE, DELETE ON public.transactions,
    public.transaction_items, public.payments TO branchsync_hub;

-- Down tables (direction = down): read only.
GRANT SELECT ON public.products, public.branch_prices,
    public.stock_allocations TO branchsync_hub;
