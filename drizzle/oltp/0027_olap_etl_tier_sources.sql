-- Custom (columns and triggers drizzle-kit cannot express): what the OLAP ETL of the jobs ledger and the content
-- catalog reads incrementally (src/tiers/olap/etl/tiers.ts). Unlike email_events these rows change after insert
-- (a job runs and finishes, an object's references move), so `changed_xid` is the 64-bit id of the transaction
-- that last inserted or updated the row: set by its default on insert and by a trigger on every update, in the
-- writer's own transaction (no extra round trip). Every transaction below pg_snapshot_xmin(pg_current_snapshot())
-- has finished, so a watermark on it never skips a change that commits late (same reasoning as 0009). Adding the
-- column stamps every existing row with this migration's transaction, so the first run aggregates the history.
CREATE FUNCTION etl_stamp_changed_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.changed_xid := pg_current_xact_id();
  RETURN NEW;
END
$$;
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN IF NOT EXISTS "changed_xid" xid8 NOT NULL DEFAULT pg_current_xact_id();
--> statement-breakpoint
CREATE TRIGGER "jobs_changed_xid" BEFORE UPDATE ON "jobs" FOR EACH ROW EXECUTE FUNCTION etl_stamp_changed_xid();
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "jobs_changed_xid_idx" ON "jobs" ("changed_xid");
--> statement-breakpoint
ALTER TABLE "content_objects" ADD COLUMN IF NOT EXISTS "changed_xid" xid8 NOT NULL DEFAULT pg_current_xact_id();
--> statement-breakpoint
CREATE TRIGGER "content_objects_changed_xid" BEFORE UPDATE ON "content_objects" FOR EACH ROW EXECUTE FUNCTION etl_stamp_changed_xid();
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "content_objects_changed_xid_idx" ON "content_objects" ("changed_xid");
--> statement-breakpoint
-- The ETL reads the ledger across tenants under the internal 'analytics' role, read-only (content_objects has its policy since 0013).
CREATE POLICY "jobs_analytics_read" ON "jobs" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'analytics');
--> statement-breakpoint
-- A catalog row leaves by a delete, which stamps nothing; but every path that deletes one (content retention,
-- erasure, the consistency repair) writes or updates its tombstone in the same statement: that is the ETL's signal.
ALTER TABLE "content_tombstones" ADD COLUMN IF NOT EXISTS "changed_xid" xid8 NOT NULL DEFAULT pg_current_xact_id();
--> statement-breakpoint
CREATE TRIGGER "content_tombstones_changed_xid" BEFORE UPDATE ON "content_tombstones" FOR EACH ROW EXECUTE FUNCTION etl_stamp_changed_xid();
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "content_tombstones_changed_xid_idx" ON "content_tombstones" ("changed_xid");
--> statement-breakpoint
CREATE POLICY "content_tombstones_analytics_read" ON "content_tombstones" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'analytics');
