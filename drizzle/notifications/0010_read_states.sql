CREATE TABLE "notification_tenant_settings" (
	"tenant_id" uuid PRIMARY KEY NOT NULL,
	"badge_counts" varchar(10) DEFAULT 'unread' NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notification_tenant_settings_badge_counts_check" CHECK ("notification_tenant_settings"."badge_counts" in ('unread', 'unseen'))
);
--> statement-breakpoint
ALTER TABLE "notification_tenant_settings" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "notification_receipts" ADD COLUMN "seen_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "notification_receipts" ADD COLUMN "archived_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "notifications" ADD COLUMN "seen_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "notifications" ADD COLUMN "archived_at" timestamp with time zone;--> statement-breakpoint
CREATE POLICY "notification_tenant_settings_read" ON "notification_tenant_settings" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'system' or "notification_tenant_settings"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "notification_tenant_settings_write" ON "notification_tenant_settings" AS PERMISSIVE FOR ALL TO public USING ("notification_tenant_settings"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system')) WITH CHECK ("notification_tenant_settings"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system'));