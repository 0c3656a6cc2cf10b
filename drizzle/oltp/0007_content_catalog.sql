CREATE TABLE "content_objects" (
	"tenant_id" uuid NOT NULL,
	"hash" text NOT NULL,
	"kind" text NOT NULL,
	"storage_key" text NOT NULL,
	"raw_size" bigint NOT NULL,
	"stored_size" bigint NOT NULL,
	"algorithm" text NOT NULL,
	"dictionary_hash" text,
	"mime_type" text NOT NULL,
	"ref_count" integer DEFAULT 0 NOT NULL,
	"expires_at" timestamp (3) with time zone NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "content_objects_pkey" PRIMARY KEY("tenant_id","hash"),
	CONSTRAINT "content_objects_kind_check" CHECK ("content_objects"."kind" in ('body', 'attachment', 'template')),
	CONSTRAINT "content_objects_algorithm_check" CHECK ("content_objects"."algorithm" in ('raw', 'gzip', 'br', 'deflate-dict')),
	CONSTRAINT "content_objects_sizes_check" CHECK ("content_objects"."raw_size" >= 0 and "content_objects"."stored_size" >= 0)
);
--> statement-breakpoint
ALTER TABLE "content_objects" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "content_settings" (
	"tenant_id" uuid PRIMARY KEY NOT NULL,
	"retention_days" integer DEFAULT 365 NOT NULL,
	"legal_hold" boolean DEFAULT false NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "content_settings_retention_check" CHECK ("content_settings"."retention_days" between 1 and 3650)
);
--> statement-breakpoint
ALTER TABLE "content_settings" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "email_content_parts" (
	"tenant_id" uuid NOT NULL,
	"email_id" uuid NOT NULL,
	"position" integer NOT NULL,
	"hash" text NOT NULL,
	"filename" text,
	"mime_type" text NOT NULL,
	"disposition" text NOT NULL,
	CONSTRAINT "email_content_parts_pkey" PRIMARY KEY("tenant_id","email_id","position"),
	CONSTRAINT "email_content_parts_disposition_check" CHECK ("email_content_parts"."disposition" in ('body', 'attachment', 'inline'))
);
--> statement-breakpoint
ALTER TABLE "email_content_parts" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "email_contents" (
	"tenant_id" uuid NOT NULL,
	"email_id" uuid NOT NULL,
	"idempotency_key" text,
	"subject" text NOT NULL,
	"search" "tsvector",
	"snippet" text,
	"indexed_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "email_contents_pkey" PRIMARY KEY("tenant_id","email_id")
);
--> statement-breakpoint
ALTER TABLE "email_contents" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE INDEX "content_objects_expiry_idx" ON "content_objects" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "content_objects_unreferenced_idx" ON "content_objects" USING btree ("tenant_id") WHERE "content_objects"."ref_count" <= 0;--> statement-breakpoint
CREATE INDEX "email_content_parts_hash_idx" ON "email_content_parts" USING btree ("tenant_id","hash");--> statement-breakpoint
CREATE UNIQUE INDEX "email_contents_idempotency_idx" ON "email_contents" USING btree ("tenant_id","idempotency_key");--> statement-breakpoint
CREATE INDEX "email_contents_search_idx" ON "email_contents" USING gin ("search");--> statement-breakpoint
CREATE INDEX "email_contents_unindexed_idx" ON "email_contents" USING btree ("created_at") WHERE "email_contents"."indexed_at" is null;--> statement-breakpoint
CREATE POLICY "content_objects_tenant_isolation" ON "content_objects" AS PERMISSIVE FOR ALL TO public USING ("content_objects"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("content_objects"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "content_objects_maintenance" ON "content_objects" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) = 'maintenance' and ("content_objects"."ref_count" <= 0 or "content_objects"."expires_at" < now())) WITH CHECK (false);--> statement-breakpoint
CREATE POLICY "content_settings_tenant_isolation" ON "content_settings" AS PERMISSIVE FOR ALL TO public USING ("content_settings"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("content_settings"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "content_settings_maintenance" ON "content_settings" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'maintenance');--> statement-breakpoint
CREATE POLICY "email_content_parts_tenant_isolation" ON "email_content_parts" AS PERMISSIVE FOR ALL TO public USING ("email_content_parts"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("email_content_parts"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "email_contents_tenant_isolation" ON "email_contents" AS PERMISSIVE FOR ALL TO public USING ("email_contents"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("email_contents"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "email_contents_maintenance" ON "email_contents" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'maintenance' and "email_contents"."indexed_at" is null);