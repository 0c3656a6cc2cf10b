CREATE TABLE "tenant_closures" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" uuid,
	"tenant_digest" text NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"steps" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"receipt" jsonb,
	"closed_at" timestamp (3) with time zone NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp (3) with time zone,
	CONSTRAINT "tenant_closures_status_check" CHECK ("tenant_closures"."status" in ('running', 'completed')),
	CONSTRAINT "tenant_closures_tenant_check" CHECK ("tenant_closures"."status" = 'completed' or "tenant_closures"."tenant_id" is not null)
);
--> statement-breakpoint
ALTER TABLE "tenant_closures" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "tenants" DROP CONSTRAINT "tenants_status_check";--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "max_storage_bytes" bigint DEFAULT 1073741824 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "close_after" timestamp (3) with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "tenant_closures_digest_key" ON "tenant_closures" USING btree ("tenant_digest");--> statement-breakpoint
CREATE INDEX "tenant_closures_completed_idx" ON "tenant_closures" USING btree ("completed_at");--> statement-breakpoint
ALTER TABLE "tenants" ADD CONSTRAINT "tenants_status_check" CHECK ("tenants"."status" in ('active', 'suspended', 'closing', 'closed'));--> statement-breakpoint
CREATE POLICY "tenant_closures_lifecycle" ON "tenant_closures" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) = 'lifecycle') WITH CHECK ((select current_setting('app.current_role', true)) = 'lifecycle');