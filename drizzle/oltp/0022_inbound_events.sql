ALTER TABLE "campaigns" ADD COLUMN "track_engagement" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "email_events" ADD COLUMN "source_event_id" text;--> statement-breakpoint
CREATE UNIQUE INDEX "email_events_tenant_source_event_key" ON "email_events" USING btree ("tenant_id","source_event_id");--> statement-breakpoint
CREATE POLICY "emails_system_read" ON "emails" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'system');