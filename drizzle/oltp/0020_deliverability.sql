CREATE TABLE "suppressions" (
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"address_hash" text NOT NULL,
	"address" text,
	"reason" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"erased_at" timestamp (3) with time zone,
	CONSTRAINT "suppressions_pkey" PRIMARY KEY("tenant_id","address_hash"),
	CONSTRAINT "suppressions_tenant_id_key" UNIQUE("tenant_id","id"),
	CONSTRAINT "suppressions_reason_check" CHECK ("suppressions"."reason" in ('unsubscribe', 'hard_bounce', 'complaint', 'admin')),
	CONSTRAINT "suppressions_address_lower_check" CHECK ("suppressions"."address" = lower("suppressions"."address"))
);
--> statement-breakpoint
ALTER TABLE "suppressions" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "dns_results" jsonb;--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "checked_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "suppressions" ADD CONSTRAINT "suppressions_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "suppressions_tenant_address_idx" ON "suppressions" USING btree ("tenant_id","address");--> statement-breakpoint
CREATE INDEX "suppressions_tenant_created_idx" ON "suppressions" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "domains_verified_name_key" ON "domains" USING btree ("name") WHERE verification_status = 'verified';--> statement-breakpoint
CREATE INDEX "domains_status_checked_idx" ON "domains" USING btree ("verification_status","checked_at");--> statement-breakpoint
CREATE POLICY "domains_system_read" ON "domains" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'system');--> statement-breakpoint
CREATE POLICY "suppressions_tenant_isolation" ON "suppressions" AS PERMISSIVE FOR ALL TO public USING ("suppressions"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("suppressions"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));