CREATE TABLE "notification_push_subscriptions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"endpoint" text NOT NULL,
	"p256dh" text NOT NULL,
	"auth" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "notification_push_subscriptions" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE UNIQUE INDEX "notification_push_subscriptions_key" ON "notification_push_subscriptions" USING btree ("tenant_id","user_id","endpoint");--> statement-breakpoint
CREATE INDEX "notification_push_subscriptions_last_seen_idx" ON "notification_push_subscriptions" USING btree ("last_seen_at");--> statement-breakpoint
CREATE POLICY "notification_push_subscriptions_read" ON "notification_push_subscriptions" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'system' or ("notification_push_subscriptions"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notification_push_subscriptions"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or (select current_setting('app.current_role', true)) in ('admin', 'operator', 'system'))));--> statement-breakpoint
CREATE POLICY "notification_push_subscriptions_insert" ON "notification_push_subscriptions" AS PERMISSIVE FOR INSERT TO public WITH CHECK ("notification_push_subscriptions"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and ("notification_push_subscriptions"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid) or (select current_setting('app.current_role', true)) = 'system'));--> statement-breakpoint
CREATE POLICY "notification_push_subscriptions_update" ON "notification_push_subscriptions" AS PERMISSIVE FOR UPDATE TO public USING ((select current_setting('app.current_role', true)) = 'system' or ("notification_push_subscriptions"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and "notification_push_subscriptions"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid))) WITH CHECK ((select current_setting('app.current_role', true)) = 'system' or ("notification_push_subscriptions"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and "notification_push_subscriptions"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid)));--> statement-breakpoint
CREATE POLICY "notification_push_subscriptions_delete" ON "notification_push_subscriptions" AS PERMISSIVE FOR DELETE TO public USING ((select current_setting('app.current_role', true)) = 'system' or ("notification_push_subscriptions"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and "notification_push_subscriptions"."user_id" = (select nullif(current_setting('app.current_user_id', true), '')::uuid)));