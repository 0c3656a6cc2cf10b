CREATE TABLE "notification_deliveries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"notification_id" uuid NOT NULL,
	"outbox_id" uuid NOT NULL,
	"channel" varchar(20) NOT NULL,
	"endpoint_id" uuid,
	"attempt" integer NOT NULL,
	"outcome" varchar(20) NOT NULL,
	"provider_id" text,
	"error" text,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notification_deliveries_outcome_check" CHECK ("notification_deliveries"."outcome" in ('sent', 'failed', 'rejected', 'deferred', 'skipped'))
);
--> statement-breakpoint
ALTER TABLE "notification_deliveries" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "notification_preferences" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"user_id" uuid,
	"type" varchar(50) NOT NULL,
	"channel" varchar(20) NOT NULL,
	"enabled" boolean NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notification_preferences_channel_check" CHECK ("notification_preferences"."channel" in ('email', 'push'))
);
--> statement-breakpoint
ALTER TABLE "notification_preferences" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "notification_webhook_endpoints" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"url" text NOT NULL,
	"description" varchar(200),
	"secret" text NOT NULL,
	"types" text[],
	"enabled" boolean DEFAULT true NOT NULL,
	"consecutive_failures" integer DEFAULT 0 NOT NULL,
	"disabled_at" timestamp with time zone,
	"disabled_reason" text,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "notification_webhook_endpoints" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "notification_outbox" DROP CONSTRAINT "notification_outbox_status_check";--> statement-breakpoint
ALTER TABLE "notification_outbox" DROP CONSTRAINT "notification_outbox_channel_check";--> statement-breakpoint
ALTER TABLE "notification_outbox" ADD COLUMN "endpoint_id" uuid;--> statement-breakpoint
ALTER TABLE "notification_deliveries" ADD CONSTRAINT "notification_deliveries_notification_id_notifications_id_fk" FOREIGN KEY ("notification_id") REFERENCES "public"."notifications"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "notification_deliveries_notification_idx" ON "notification_deliveries" USING btree ("notification_id","started_at");--> statement-breakpoint
CREATE UNIQUE INDEX "notification_preferences_key" ON "notification_preferences" USING btree ("tenant_id",coalesce("user_id", '00000000-0000-0000-0000-000000000000'::uuid),"type","channel");--> statement-breakpoint
CREATE INDEX "notification_webhook_endpoints_tenant_idx" ON "notification_webhook_endpoints" USING btree ("tenant_id") WHERE "notification_webhook_endpoints"."enabled";--> statement-breakpoint
ALTER TABLE "notification_outbox" ADD CONSTRAINT "notification_outbox_status_check" CHECK ("notification_outbox"."status" in ('pending', 'sent', 'failed'));--> statement-breakpoint
ALTER TABLE "notification_outbox" ADD CONSTRAINT "notification_outbox_channel_check" CHECK ("notification_outbox"."channel" in ('email', 'push', 'webhook'));--> statement-breakpoint
CREATE POLICY "notification_deliveries_read" ON "notification_deliveries" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'system' or ("notification_deliveries"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and (select current_setting('app.current_role', true)) in ('admin', 'operator')));--> statement-breakpoint
CREATE POLICY "notification_deliveries_write" ON "notification_deliveries" AS PERMISSIVE FOR INSERT TO public WITH CHECK ((select current_setting('app.current_role', true)) = 'system' and "notification_deliveries"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "notification_deliveries_delete" ON "notification_deliveries" AS PERMISSIVE FOR DELETE TO public USING ((select current_setting('app.current_role', true)) = 'system');--> statement-breakpoint
CREATE POLICY "notification_preferences_read" ON "notification_preferences" AS PERMISSIVE FOR SELECT TO public USING ("notification_preferences"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notification_preferences"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or "notification_preferences"."user_id" is null or (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system')));--> statement-breakpoint
CREATE POLICY "notification_preferences_write" ON "notification_preferences" AS PERMISSIVE FOR ALL TO public USING ("notification_preferences"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notification_preferences"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or ("notification_preferences"."user_id" is null and (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system')) or (select current_setting('app.current_role', true)) = 'system')) WITH CHECK ("notification_preferences"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notification_preferences"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or ("notification_preferences"."user_id" is null and (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system')) or (select current_setting('app.current_role', true)) = 'system'));--> statement-breakpoint
CREATE POLICY "notification_webhook_endpoints_staff" ON "notification_webhook_endpoints" AS PERMISSIVE FOR ALL TO public USING ("notification_webhook_endpoints"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system')) WITH CHECK ("notification_webhook_endpoints"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system'));