CREATE TABLE "invitations" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"email" text NOT NULL,
	"role" text DEFAULT 'member' NOT NULL,
	"token_hash" text NOT NULL,
	"invited_by" uuid NOT NULL,
	"expires_at" timestamp (3) with time zone NOT NULL,
	"accepted_at" timestamp (3) with time zone,
	"accepted_user_id" uuid,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "invitations_role_check" CHECK ("invitations"."role" in ('member', 'admin'))
);
--> statement-breakpoint
ALTER TABLE "invitations" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "tenants" DROP CONSTRAINT "tenants_limits_check";--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "scope" text DEFAULT 'read_write' NOT NULL;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "owner" text DEFAULT 'user' NOT NULL;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "expires_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "max_seats" integer DEFAULT 5 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "provisioning_key" text;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "status_changed_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "invitations" ADD CONSTRAINT "invitations_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "invitations_token_hash_key" ON "invitations" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "invitations_tenant_created_idx" ON "invitations" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "api_keys_tenant_creator_idx" ON "api_keys" USING btree ("tenant_id","created_by");--> statement-breakpoint
CREATE UNIQUE INDEX "tenants_provisioning_key" ON "tenants" USING btree ("provisioning_key");--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_scope_check" CHECK ("api_keys"."scope" in ('read', 'read_write'));--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_owner_check" CHECK ("api_keys"."owner" in ('user', 'tenant'));--> statement-breakpoint
ALTER TABLE "tenants" ADD CONSTRAINT "tenants_limits_check" CHECK ("tenants"."daily_send_limit" >= 0 and "tenants"."max_mailboxes" >= 0 and "tenants"."max_seats" >= 1);--> statement-breakpoint
CREATE POLICY "tenants_operator_read" ON "tenants" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'operator');--> statement-breakpoint
CREATE POLICY "invitations_tenant_isolation" ON "invitations" AS PERMISSIVE FOR ALL TO public USING ("invitations"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("invitations"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "invitations_lookup_by_hash" ON "invitations" AS PERMISSIVE FOR SELECT TO public USING ("invitations"."token_hash" = (select current_setting('app.invitation_hash', true)));--> statement-breakpoint
CREATE POLICY "invitations_retention" ON "invitations" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) = 'maintenance' and coalesce("invitations"."accepted_at", "invitations"."expires_at") < now() - interval '30 days');--> statement-breakpoint
-- drizzle-kit enables row-level security on invitations but cannot FORCE it; force it, grant it, and give
-- the lifecycle role its read policy (as 0015 did for every table then).
ALTER TABLE "invitations" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON "invitations" TO app_user;
--> statement-breakpoint
CREATE POLICY "invitations_lifecycle_read" ON "invitations" AS PERMISSIVE FOR SELECT USING ((select current_setting('app.current_role', true)) = 'lifecycle');
