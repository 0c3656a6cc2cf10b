CREATE TABLE "notification_digest_items" (
	"notification_id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"channel" varchar(20) NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	"outbox_id" uuid
);
--> statement-breakpoint
ALTER TABLE "notification_digest_items" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "notification_digest_settings" (
	"tenant_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"channel" varchar(20) NOT NULL,
	"window_minutes" integer NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notification_digest_settings_pkey" PRIMARY KEY("tenant_id","user_id","channel"),
	CONSTRAINT "notification_digest_settings_channel_check" CHECK ("notification_digest_settings"."channel" in ('email')),
	CONSTRAINT "notification_digest_settings_window_check" CHECK ("notification_digest_settings"."window_minutes" between 5 and 10080)
);
--> statement-breakpoint
ALTER TABLE "notification_digest_settings" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "notification_outbox" ADD COLUMN "digest" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "notification_digest_items" ADD CONSTRAINT "notification_digest_items_notification_id_notifications_id_fk" FOREIGN KEY ("notification_id") REFERENCES "public"."notifications"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "notification_digest_items_due_idx" ON "notification_digest_items" USING btree ("window_end") WHERE "notification_digest_items"."outbox_id" is null;--> statement-breakpoint
CREATE INDEX "notification_digest_items_outbox_idx" ON "notification_digest_items" USING btree ("outbox_id");--> statement-breakpoint
CREATE POLICY "notification_digest_items_read" ON "notification_digest_items" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'system' or ("notification_digest_items"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notification_digest_items"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system'))));--> statement-breakpoint
CREATE POLICY "notification_digest_items_insert" ON "notification_digest_items" AS PERMISSIVE FOR INSERT TO public WITH CHECK ("notification_digest_items"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system'));--> statement-breakpoint
CREATE POLICY "notification_digest_items_update" ON "notification_digest_items" AS PERMISSIVE FOR UPDATE TO public USING ((select current_setting('app.current_role', true)) = 'system') WITH CHECK ((select current_setting('app.current_role', true)) = 'system');--> statement-breakpoint
CREATE POLICY "notification_digest_items_delete" ON "notification_digest_items" AS PERMISSIVE FOR DELETE TO public USING ((select current_setting('app.current_role', true)) = 'system');--> statement-breakpoint
CREATE POLICY "notification_digest_settings_read" ON "notification_digest_settings" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'system' or ("notification_digest_settings"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notification_digest_settings"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system'))));--> statement-breakpoint
CREATE POLICY "notification_digest_settings_write" ON "notification_digest_settings" AS PERMISSIVE FOR ALL TO public USING ("notification_digest_settings"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notification_digest_settings"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or (select current_setting('app.current_role', true)) = 'system')) WITH CHECK ("notification_digest_settings"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notification_digest_settings"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or (select current_setting('app.current_role', true)) = 'system'));