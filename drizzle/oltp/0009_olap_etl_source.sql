-- What the OLAP tier's incremental ETL needs from this database (src/tiers/olap/etl).
-- recorded_xid: the inserting transaction's 64-bit id. Unlike occurred_at (a fact's own time, which
-- may lie days back) or a sequence (whose values commit out of order), every transaction below
-- pg_snapshot_xmin(pg_current_snapshot()) has finished, so a watermark on it never skips a fact that
-- commits late. Append-only table, so the value never changes after insert.
ALTER TABLE "email_events" ADD COLUMN IF NOT EXISTS "recorded_xid" xid8 NOT NULL DEFAULT pg_current_xact_id();
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "email_events_recorded_xid_idx" ON "email_events" ("recorded_xid");
--> statement-breakpoint
-- The ETL reads across tenants under the internal 'analytics' role: read-only, never writes here.
CREATE POLICY "email_events_analytics_read" ON "email_events" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'analytics');
--> statement-breakpoint
CREATE POLICY "emails_analytics_read" ON "emails" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'analytics');
