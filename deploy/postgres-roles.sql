-- Two PostgreSQL roles for commsdesk (run once as a superuser, e.g. `psql -f`):
--
--   commsdesk_owner  owns the schema and its tables; runs the migrations
--                    (`commsdesk db upgrade` with DATABASE_MIGRATION_URL), from the
--                    admin's shell or deploy/commsdesk-migrate.service, never from serve.
--   commsdesk        what `serve` connects as (DATABASE_URL): reads and writes the
--                    app's tables, but only INSERT and SELECT on audit_events. It owns
--                    nothing, so it cannot UPDATE, DELETE or TRUNCATE the audit trail,
--                    nor ALTER it or DISABLE/DROP its triggers; retention purges go
--                    through audit_events_purge(), the owner's function that only
--                    replaces residents' words with the digest that proves them.
--
-- After each `commsdesk db upgrade` (which, given both URLs, grants the app role
-- what new tables need), `commsdesk db grant --role commsdesk` prints the grants and
-- `--apply` runs them again. `commsdesk serve` logs a warning at start when its role
-- owns the audit table, is a superuser, or may rewrite it.

CREATE ROLE commsdesk_owner LOGIN PASSWORD 'change-me-owner';
CREATE ROLE commsdesk LOGIN PASSWORD 'change-me-app';
CREATE DATABASE commsdesk OWNER commsdesk_owner;
\connect commsdesk
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO commsdesk_owner;
GRANT USAGE ON SCHEMA public TO commsdesk;

-- then, as the admin, with both URLs in the environment:
--   DATABASE_MIGRATION_URL=postgresql+psycopg://commsdesk_owner:…@db/commsdesk \
--   DATABASE_URL=postgresql+psycopg://commsdesk:…@db/commsdesk  commsdesk db upgrade
