-- More of what the OLAP ETL reads (src/tiers/olap/etl): mailboxes (warmup progress) and the content
-- catalog's sizes (billing storage), read-only under the internal 'analytics' role; and indexes that let
-- it recompute a touched mailbox's or sequence step's day without scanning every email of the tenant.
CREATE POLICY "mailboxes_analytics_read" ON "mailboxes" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'analytics');
--> statement-breakpoint
CREATE POLICY "content_objects_analytics_read" ON "content_objects" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'analytics');
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "emails_tenant_mailbox_idx" ON "emails" ("tenant_id", "mailbox_id");
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "emails_tenant_step_idx" ON "emails" ("tenant_id", "step_id") WHERE "step_id" IS NOT NULL;
