CREATE TABLE "content_tombstones" (
	"tenant_id" uuid NOT NULL,
	"hash" text NOT NULL,
	"storage_key" text NOT NULL,
	"tombstoned_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"purged_at" timestamp (3) with time zone,
	CONSTRAINT "content_tombstones_pkey" PRIMARY KEY("tenant_id","hash")
);
--> statement-breakpoint
ALTER TABLE "content_tombstones" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "erasure_requests" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" uuid NOT NULL,
	"subject_email" text,
	"subject_user_id" uuid,
	"subject_digest" text,
	"requested_by" uuid NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"job_id" uuid,
	"refs" jsonb,
	"steps" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"receipt" jsonb,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp (3) with time zone,
	CONSTRAINT "erasure_requests_status_check" CHECK ("erasure_requests"."status" in ('pending', 'running', 'completed')),
	CONSTRAINT "erasure_requests_subject_check" CHECK ("erasure_requests"."status" = 'completed' or "erasure_requests"."subject_email" is not null or "erasure_requests"."subject_user_id" is not null)
);
--> statement-breakpoint
ALTER TABLE "erasure_requests" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE INDEX "content_tombstones_tombstoned_idx" ON "content_tombstones" USING btree ("tombstoned_at");--> statement-breakpoint
CREATE INDEX "erasure_requests_tenant_created_idx" ON "erasure_requests" USING btree ("tenant_id","created_at");--> statement-breakpoint
CREATE INDEX "erasure_requests_completed_idx" ON "erasure_requests" USING btree ("completed_at");--> statement-breakpoint
CREATE POLICY "content_tombstones_tenant_isolation" ON "content_tombstones" AS PERMISSIVE FOR ALL TO public USING ("content_tombstones"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("content_tombstones"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "content_tombstones_maintenance" ON "content_tombstones" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) in ('maintenance', 'lifecycle')) WITH CHECK ((select current_setting('app.current_role', true)) in ('maintenance', 'lifecycle'));--> statement-breakpoint
CREATE POLICY "erasure_requests_tenant_isolation" ON "erasure_requests" AS PERMISSIVE FOR ALL TO public USING ("erasure_requests"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("erasure_requests"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "erasure_requests_lifecycle" ON "erasure_requests" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) = 'lifecycle') WITH CHECK ((select current_setting('app.current_role', true)) = 'lifecycle');