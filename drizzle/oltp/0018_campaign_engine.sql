CREATE TABLE "campaign_mailboxes" (
	"tenant_id" uuid NOT NULL,
	"campaign_id" uuid NOT NULL,
	"mailbox_id" uuid NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "campaign_mailboxes_pkey" PRIMARY KEY("tenant_id","campaign_id","mailbox_id")
);
--> statement-breakpoint
ALTER TABLE "campaign_mailboxes" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "sequencer_daily_plans" (
	"tenant_id" uuid NOT NULL,
	"campaign_id" uuid NOT NULL,
	"mailbox_id" uuid NOT NULL,
	"day" date NOT NULL,
	"planned" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "sequencer_daily_plans_pkey" PRIMARY KEY("tenant_id","campaign_id","mailbox_id","day"),
	CONSTRAINT "sequencer_daily_plans_planned_check" CHECK ("sequencer_daily_plans"."planned" >= 0)
);
--> statement-breakpoint
ALTER TABLE "sequencer_daily_plans" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "campaign_leads" DROP CONSTRAINT "campaign_leads_status_check";--> statement-breakpoint
ALTER TABLE "campaign_leads" ADD COLUMN "mailbox_id" uuid;--> statement-breakpoint
ALTER TABLE "campaign_leads" ADD COLUMN "thread_email_id" uuid;--> statement-breakpoint
ALTER TABLE "campaign_leads" ADD COLUMN "stop_reason" text;--> statement-breakpoint
ALTER TABLE "campaigns" ADD COLUMN "mailbox_fallback" text DEFAULT 'wait' NOT NULL;--> statement-breakpoint
ALTER TABLE "emails" ADD COLUMN "variant" text;--> statement-breakpoint
ALTER TABLE "campaign_mailboxes" ADD CONSTRAINT "campaign_mailboxes_campaign_fk" FOREIGN KEY ("tenant_id","campaign_id") REFERENCES "public"."campaigns"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "campaign_mailboxes" ADD CONSTRAINT "campaign_mailboxes_mailbox_fk" FOREIGN KEY ("tenant_id","mailbox_id") REFERENCES "public"."mailboxes"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "campaign_leads" ADD CONSTRAINT "campaign_leads_status_check" CHECK ("campaign_leads"."status" in ('active', 'paused', 'finished', 'stopped', 'skipped'));--> statement-breakpoint
ALTER TABLE "campaigns" ADD CONSTRAINT "campaigns_mailbox_fallback_check" CHECK ("campaigns"."mailbox_fallback" in ('wait', 'move'));--> statement-breakpoint
CREATE POLICY "campaigns_system_read" ON "campaigns" AS PERMISSIVE FOR SELECT TO public USING ((select current_setting('app.current_role', true)) = 'system');--> statement-breakpoint
CREATE POLICY "campaign_mailboxes_tenant_isolation" ON "campaign_mailboxes" AS PERMISSIVE FOR ALL TO public USING ("campaign_mailboxes"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("campaign_mailboxes"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "sequencer_daily_plans_tenant_isolation" ON "sequencer_daily_plans" AS PERMISSIVE FOR ALL TO public USING ("sequencer_daily_plans"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("sequencer_daily_plans"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "sequencer_daily_plans_system" ON "sequencer_daily_plans" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) = 'system') WITH CHECK ((select current_setting('app.current_role', true)) = 'system');