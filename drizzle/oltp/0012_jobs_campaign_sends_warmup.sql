CREATE TABLE "campaign_daily_sends" (
	"tenant_id" uuid NOT NULL,
	"campaign_id" uuid NOT NULL,
	"day" date NOT NULL,
	"sent" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "campaign_daily_sends_pkey" PRIMARY KEY("tenant_id","campaign_id","day"),
	CONSTRAINT "campaign_daily_sends_sent_check" CHECK ("campaign_daily_sends"."sent" >= 0)
);
--> statement-breakpoint
ALTER TABLE "campaign_daily_sends" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "mailbox_warmup" (
	"tenant_id" uuid NOT NULL,
	"mailbox_id" uuid NOT NULL,
	"advanced_on" date NOT NULL,
	CONSTRAINT "mailbox_warmup_pkey" PRIMARY KEY("tenant_id","mailbox_id")
);
--> statement-breakpoint
ALTER TABLE "mailbox_warmup" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY "mailbox_daily_sends_system" ON "mailbox_daily_sends" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) = 'system') WITH CHECK ((select current_setting('app.current_role', true)) = 'system');--> statement-breakpoint
CREATE POLICY "campaign_daily_sends_tenant_isolation" ON "campaign_daily_sends" AS PERMISSIVE FOR ALL TO public USING ("campaign_daily_sends"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("campaign_daily_sends"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "campaign_daily_sends_system" ON "campaign_daily_sends" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) = 'system') WITH CHECK ((select current_setting('app.current_role', true)) = 'system');--> statement-breakpoint
CREATE POLICY "mailbox_warmup_tenant_isolation" ON "mailbox_warmup" AS PERMISSIVE FOR ALL TO public USING ("mailbox_warmup"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("mailbox_warmup"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "mailbox_warmup_system" ON "mailbox_warmup" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) = 'system') WITH CHECK ((select current_setting('app.current_role', true)) = 'system');--> statement-breakpoint
-- The daily warmup task (src/tiers/jobs/services/mailbox-warmup.ts) advances warming mailboxes of every
-- tenant under the internal 'system' role: it reads mailboxes and changes only warmup_day.
CREATE POLICY "mailboxes_system_read" ON "mailboxes" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'system');
--> statement-breakpoint
CREATE POLICY "mailboxes_system_warmup" ON "mailboxes" AS PERMISSIVE FOR UPDATE
  USING ((select current_setting('app.current_role', true)) = 'system' and "mailboxes"."warmup_enabled")
  WITH CHECK ((select current_setting('app.current_role', true)) = 'system' and "mailboxes"."warmup_enabled");
--> statement-breakpoint
-- Forces row-level security on the tables added above (drizzle-kit only enables it), as 0002 does.
DO $$
DECLARE t record;
BEGIN
  FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relrowsecurity AND NOT c.relforcerowsecurity
  LOOP
    EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', t.relname);
  END LOOP;
END
$$;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_user;
