CREATE TABLE "jobs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid,
	"type" text NOT NULL,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"priority" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer NOT NULL,
	"last_error" text,
	"progress" jsonb,
	"idempotency_key" text,
	"last_queue" text,
	"scheduled_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp (3) with time zone,
	"completed_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "jobs_status_check" CHECK ("jobs"."status" in ('pending', 'running', 'succeeded', 'failed', 'dead')),
	CONSTRAINT "jobs_priority_check" CHECK ("jobs"."priority" in ('high', 'normal', 'low')),
	CONSTRAINT "jobs_attempts_check" CHECK ("jobs"."attempts" >= 0 and "jobs"."max_attempts" between 1 and 20)
);
--> statement-breakpoint
ALTER TABLE "jobs" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_idempotency_key" ON "jobs" USING btree (coalesce("tenant_id", '00000000-0000-0000-0000-000000000000'::uuid),"type","idempotency_key") WHERE "jobs"."idempotency_key" is not null;--> statement-breakpoint
CREATE INDEX "jobs_tenant_created_idx" ON "jobs" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "jobs_status_scheduled_idx" ON "jobs" USING btree ("status","scheduled_at");--> statement-breakpoint
CREATE INDEX "jobs_status_completed_idx" ON "jobs" USING btree ("status","completed_at");--> statement-breakpoint
CREATE POLICY "jobs_tenant_isolation" ON "jobs" AS PERMISSIVE FOR ALL TO public USING ("jobs"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("jobs"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "jobs_system" ON "jobs" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) = 'system') WITH CHECK ((select current_setting('app.current_role', true)) = 'system');--> statement-breakpoint
CREATE POLICY "jobs_operator_read" ON "jobs" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'operator');--> statement-breakpoint
CREATE POLICY "jobs_operator_redrive" ON "jobs" AS PERMISSIVE FOR UPDATE TO public USING ((select current_setting('app.current_role', true)) = 'operator') WITH CHECK ((select current_setting('app.current_role', true)) = 'operator');