CREATE TABLE "admin_system_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"event_type" varchar(100) NOT NULL,
	"severity" varchar(20) NOT NULL,
	"tenant_id" uuid,
	"user_id" uuid,
	"description" text NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"is_resolved" boolean DEFAULT false NOT NULL,
	"resolved_at" timestamp with time zone,
	"resolved_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"dedup_key" varchar(200),
	"occurrences" integer DEFAULT 1 NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "admin_system_events_severity_check" CHECK ("admin_system_events"."severity" in ('low', 'medium', 'high', 'critical'))
);
--> statement-breakpoint
ALTER TABLE "admin_system_events" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "notification_outbox" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"notification_id" uuid NOT NULL,
	"tenant_id" uuid NOT NULL,
	"channel" varchar(20) NOT NULL,
	"status" varchar(20) DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"enqueued_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone,
	CONSTRAINT "notification_outbox_status_check" CHECK ("notification_outbox"."status" in ('pending', 'sent')),
	CONSTRAINT "notification_outbox_channel_check" CHECK ("notification_outbox"."channel" in ('email', 'push'))
);
--> statement-breakpoint
ALTER TABLE "notification_outbox" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "notification_receipts" (
	"notification_id" uuid NOT NULL,
	"tenant_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"read_at" timestamp with time zone,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "notification_receipts_pkey" PRIMARY KEY("notification_id","user_id")
);
--> statement-breakpoint
ALTER TABLE "notification_receipts" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "notifications" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"user_id" uuid,
	"type" varchar(50) NOT NULL,
	"title" varchar(255) NOT NULL,
	"message" text NOT NULL,
	"data" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"channel" varchar(20) DEFAULT 'in_app' NOT NULL,
	"is_read" boolean DEFAULT false NOT NULL,
	"read_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "notifications_channel_check" CHECK ("notifications"."channel" in ('in_app', 'email', 'push'))
);
--> statement-breakpoint
ALTER TABLE "notifications" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "notification_outbox" ADD CONSTRAINT "notification_outbox_notification_id_notifications_id_fk" FOREIGN KEY ("notification_id") REFERENCES "public"."notifications"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_receipts" ADD CONSTRAINT "notification_receipts_notification_id_notifications_id_fk" FOREIGN KEY ("notification_id") REFERENCES "public"."notifications"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "idx_admin_system_events_severity_created" ON "admin_system_events" USING btree ("severity","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "idx_admin_system_events_tenant_created" ON "admin_system_events" USING btree ("tenant_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "idx_admin_system_events_unresolved" ON "admin_system_events" USING btree ("created_at" DESC NULLS LAST) WHERE "admin_system_events"."is_resolved" = false;--> statement-breakpoint
CREATE UNIQUE INDEX "admin_system_events_open_dedup_key" ON "admin_system_events" USING btree (coalesce("tenant_id", '00000000-0000-0000-0000-000000000000'::uuid),"dedup_key") WHERE "admin_system_events"."is_resolved" = false and "admin_system_events"."dedup_key" is not null;--> statement-breakpoint
CREATE INDEX "notification_outbox_pending_idx" ON "notification_outbox" USING btree ("enqueued_at") WHERE "notification_outbox"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "notification_outbox_sent_idx" ON "notification_outbox" USING btree ("sent_at") WHERE "notification_outbox"."status" = 'sent';--> statement-breakpoint
CREATE INDEX "idx_notifications_user_tenant_created" ON "notifications" USING btree ("user_id","tenant_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "idx_notifications_unread" ON "notifications" USING btree ("user_id","tenant_id") WHERE "notifications"."is_read" = false;--> statement-breakpoint
CREATE INDEX "notifications_expires_at_idx" ON "notifications" USING btree ("expires_at") WHERE "notifications"."expires_at" is not null;--> statement-breakpoint
CREATE INDEX "notifications_created_at_idx" ON "notifications" USING btree ("created_at");--> statement-breakpoint
CREATE POLICY "admin_system_events_access" ON "admin_system_events" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) in ('operator', 'system') or ("admin_system_events"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and (select current_setting('app.current_role', true)) = 'admin')) WITH CHECK ((select current_setting('app.current_role', true)) in ('operator', 'system') or ("admin_system_events"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and (select current_setting('app.current_role', true)) = 'admin'));--> statement-breakpoint
CREATE POLICY "notification_outbox_tenant" ON "notification_outbox" AS PERMISSIVE FOR ALL TO public USING ("notification_outbox"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) or (select current_setting('app.current_role', true)) = 'system') WITH CHECK ("notification_outbox"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) or (select current_setting('app.current_role', true)) = 'system');--> statement-breakpoint
CREATE POLICY "notification_receipts_owner" ON "notification_receipts" AS PERMISSIVE FOR ALL TO public USING ("notification_receipts"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notification_receipts"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or (select current_setting('app.current_role', true)) = 'system')) WITH CHECK ("notification_receipts"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notification_receipts"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or (select current_setting('app.current_role', true)) = 'system'));--> statement-breakpoint
CREATE POLICY "notifications_select" ON "notifications" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'system' or ("notifications"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notifications"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or "notifications"."user_id" is null or (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system'))));--> statement-breakpoint
CREATE POLICY "notifications_insert" ON "notifications" AS PERMISSIVE FOR INSERT TO public WITH CHECK ("notifications"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system'));--> statement-breakpoint
CREATE POLICY "notifications_update" ON "notifications" AS PERMISSIVE FOR UPDATE TO public USING ((select current_setting('app.current_role', true)) = 'system' or ("notifications"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and "notifications"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid))) WITH CHECK ((select current_setting('app.current_role', true)) = 'system' or ("notifications"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and "notifications"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid)));--> statement-breakpoint
CREATE POLICY "notifications_delete" ON "notifications" AS PERMISSIVE FOR DELETE TO public USING ((select current_setting('app.current_role', true)) = 'system');