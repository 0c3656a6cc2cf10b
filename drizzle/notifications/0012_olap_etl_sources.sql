-- Custom (columns and triggers drizzle-kit cannot express): what the OLAP ETL of notifications reads incrementally
-- (src/tiers/olap/etl/tiers.ts). A notification is read, a receipt is written or changed, a delivery attempt is
-- recorded after the notification: `changed_xid` is the 64-bit id of the transaction that last inserted or updated
-- the row, set by its default on insert and by a trigger on update, in the writer's own transaction (no extra round
-- trip on markRead). Every transaction below pg_snapshot_xmin(pg_current_snapshot()) has finished, so a watermark
-- on it never skips a change that commits late. Existing rows get this migration's id: the first run backfills.
CREATE FUNCTION etl_stamp_changed_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.changed_xid := pg_current_xact_id();
  RETURN NEW;
END
$$;
--> statement-breakpoint
ALTER TABLE "notifications" ADD COLUMN IF NOT EXISTS "changed_xid" xid8 NOT NULL DEFAULT pg_current_xact_id();
--> statement-breakpoint
CREATE TRIGGER "notifications_changed_xid" BEFORE UPDATE ON "notifications" FOR EACH ROW EXECUTE FUNCTION etl_stamp_changed_xid();
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "notifications_changed_xid_idx" ON "notifications" ("changed_xid");
--> statement-breakpoint
ALTER TABLE "notification_receipts" ADD COLUMN IF NOT EXISTS "changed_xid" xid8 NOT NULL DEFAULT pg_current_xact_id();
--> statement-breakpoint
CREATE TRIGGER "notification_receipts_changed_xid" BEFORE UPDATE ON "notification_receipts" FOR EACH ROW EXECUTE FUNCTION etl_stamp_changed_xid();
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "notification_receipts_changed_xid_idx" ON "notification_receipts" ("changed_xid");
--> statement-breakpoint
-- Delivery attempts are append-only: the default alone stamps them.
ALTER TABLE "notification_deliveries" ADD COLUMN IF NOT EXISTS "changed_xid" xid8 NOT NULL DEFAULT pg_current_xact_id();
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "notification_deliveries_changed_xid_idx" ON "notification_deliveries" ("changed_xid");
--> statement-breakpoint
-- The ETL reads across tenants under the internal 'analytics' role, read-only.
CREATE POLICY "notifications_analytics_read" ON "notifications" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'analytics');
--> statement-breakpoint
CREATE POLICY "notification_receipts_analytics_read" ON "notification_receipts" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'analytics');
--> statement-breakpoint
CREATE POLICY "notification_deliveries_analytics_read" ON "notification_deliveries" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'analytics');
--> statement-breakpoint
-- The ETL recomputes a touched (tenant, creation day) from all of its notifications: a range per tenant, not a scan.
CREATE INDEX IF NOT EXISTS "notifications_tenant_created_idx" ON "notifications" ("tenant_id", "created_at");
