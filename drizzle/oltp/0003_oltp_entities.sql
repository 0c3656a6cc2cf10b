CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"name" text NOT NULL,
	"prefix" text NOT NULL,
	"hash" text NOT NULL,
	"role" text DEFAULT 'member' NOT NULL,
	"created_by" uuid NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp (3) with time zone,
	"revoked_at" timestamp (3) with time zone,
	CONSTRAINT "api_keys_role_check" CHECK ("api_keys"."role" in ('member', 'admin'))
);
--> statement-breakpoint
ALTER TABLE "api_keys" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "campaign_leads" (
	"tenant_id" uuid NOT NULL,
	"campaign_id" uuid NOT NULL,
	"lead_id" uuid NOT NULL,
	"current_step" integer DEFAULT 0 NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"next_send_at" timestamp (3) with time zone,
	"enrolled_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "campaign_leads_pkey" PRIMARY KEY("tenant_id","campaign_id","lead_id"),
	CONSTRAINT "campaign_leads_status_check" CHECK ("campaign_leads"."status" in ('active', 'paused', 'finished', 'stopped'))
);
--> statement-breakpoint
ALTER TABLE "campaign_leads" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "campaigns" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"name" text NOT NULL,
	"status" text DEFAULT 'draft' NOT NULL,
	"time_zone" text DEFAULT 'UTC' NOT NULL,
	"window_start_minute" integer DEFAULT 540 NOT NULL,
	"window_end_minute" integer DEFAULT 1020 NOT NULL,
	"send_days" integer[] DEFAULT '{1,2,3,4,5}' NOT NULL,
	"daily_limit" integer DEFAULT 100 NOT NULL,
	"starts_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "campaigns_tenant_id_key" UNIQUE("tenant_id","id"),
	CONSTRAINT "campaigns_status_check" CHECK ("campaigns"."status" in ('draft', 'scheduled', 'running', 'paused', 'completed')),
	CONSTRAINT "campaigns_window_check" CHECK ("campaigns"."window_start_minute" between 0 and 1439 and "campaigns"."window_end_minute" between 1 and 1440 and "campaigns"."window_start_minute" < "campaigns"."window_end_minute")
);
--> statement-breakpoint
ALTER TABLE "campaigns" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "domains" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"name" text NOT NULL,
	"verification_status" text DEFAULT 'pending' NOT NULL,
	"dns_records" jsonb NOT NULL,
	"verified_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "domains_tenant_id_key" UNIQUE("tenant_id","id"),
	CONSTRAINT "domains_status_check" CHECK ("domains"."verification_status" in ('pending', 'verified', 'failed'))
);
--> statement-breakpoint
ALTER TABLE "domains" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "email_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"email_id" uuid NOT NULL,
	"type" text NOT NULL,
	"occurred_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "email_events_type_check" CHECK ("email_events"."type" in ('queued', 'sent', 'delivered', 'bounced', 'opened', 'replied', 'failed', 'unsubscribed'))
);
--> statement-breakpoint
ALTER TABLE "email_events" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "emails" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"campaign_id" uuid,
	"step_id" uuid,
	"lead_id" uuid NOT NULL,
	"mailbox_id" uuid NOT NULL,
	"subject" text NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"provider_message_id" text,
	"content_storage_key" text NOT NULL,
	"queued_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp (3) with time zone,
	"delivered_at" timestamp (3) with time zone,
	"opened_at" timestamp (3) with time zone,
	"replied_at" timestamp (3) with time zone,
	"bounced_at" timestamp (3) with time zone,
	"failed_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "emails_tenant_id_key" UNIQUE("tenant_id","id"),
	CONSTRAINT "emails_status_check" CHECK ("emails"."status" in ('queued', 'sent', 'delivered', 'bounced', 'opened', 'replied', 'failed'))
);
--> statement-breakpoint
ALTER TABLE "emails" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "leads" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"email" text NOT NULL,
	"first_name" text,
	"last_name" text,
	"company" text,
	"custom_fields" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"status" text DEFAULT 'new' NOT NULL,
	"unsubscribed_at" timestamp (3) with time zone,
	"bounced_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "leads_tenant_id_key" UNIQUE("tenant_id","id"),
	CONSTRAINT "leads_status_check" CHECK ("leads"."status" in ('new', 'contacted', 'replied', 'interested', 'not_interested')),
	CONSTRAINT "leads_email_lower_check" CHECK ("leads"."email" = lower("leads"."email"))
);
--> statement-breakpoint
ALTER TABLE "leads" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "mailboxes" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"domain_id" uuid NOT NULL,
	"address" text NOT NULL,
	"daily_limit" integer DEFAULT 50 NOT NULL,
	"warmup_enabled" boolean DEFAULT true NOT NULL,
	"warmup_day" integer DEFAULT 0 NOT NULL,
	"warmup_start" integer DEFAULT 5 NOT NULL,
	"warmup_increment" integer DEFAULT 5 NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "mailboxes_tenant_id_key" UNIQUE("tenant_id","id"),
	CONSTRAINT "mailboxes_status_check" CHECK ("mailboxes"."status" in ('active', 'paused', 'bounce_protected')),
	CONSTRAINT "mailboxes_limits_check" CHECK ("mailboxes"."daily_limit" between 1 and 10000 and "mailboxes"."warmup_day" >= 0 and "mailboxes"."warmup_start" >= 1 and "mailboxes"."warmup_increment" >= 0)
);
--> statement-breakpoint
ALTER TABLE "mailboxes" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "sequence_steps" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"campaign_id" uuid NOT NULL,
	"position" integer NOT NULL,
	"delay_hours" integer DEFAULT 0 NOT NULL,
	"variants" jsonb NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sequence_steps_tenant_id_key" UNIQUE("tenant_id","id"),
	CONSTRAINT "sequence_steps_shape_check" CHECK ("sequence_steps"."position" >= 0 and "sequence_steps"."delay_hours" >= 0 and jsonb_array_length("sequence_steps"."variants") between 1 and 5)
);
--> statement-breakpoint
ALTER TABLE "sequence_steps" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "subscriptions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"plan" text NOT NULL,
	"status" text DEFAULT 'trialing' NOT NULL,
	"seats" integer DEFAULT 1 NOT NULL,
	"period_start" timestamp (3) with time zone NOT NULL,
	"period_end" timestamp (3) with time zone NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "subscriptions_status_check" CHECK ("subscriptions"."status" in ('trialing', 'active', 'past_due', 'canceled')),
	CONSTRAINT "subscriptions_period_check" CHECK ("subscriptions"."period_start" < "subscriptions"."period_end" and "subscriptions"."seats" >= 1)
);
--> statement-breakpoint
ALTER TABLE "subscriptions" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "usage_counters" (
	"tenant_id" uuid NOT NULL,
	"period_start" timestamp (3) with time zone NOT NULL,
	"emails_queued" integer DEFAULT 0 NOT NULL,
	"leads_created" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_counters_pkey" PRIMARY KEY("tenant_id","period_start")
);
--> statement-breakpoint
ALTER TABLE "usage_counters" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "daily_send_limit" integer DEFAULT 500 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "max_mailboxes" integer DEFAULT 5 NOT NULL;--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "campaign_leads" ADD CONSTRAINT "campaign_leads_campaign_fk" FOREIGN KEY ("tenant_id","campaign_id") REFERENCES "public"."campaigns"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "campaign_leads" ADD CONSTRAINT "campaign_leads_lead_fk" FOREIGN KEY ("tenant_id","lead_id") REFERENCES "public"."leads"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "campaigns" ADD CONSTRAINT "campaigns_tenant_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "domains" ADD CONSTRAINT "domains_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "email_events" ADD CONSTRAINT "email_events_email_fk" FOREIGN KEY ("tenant_id","email_id") REFERENCES "public"."emails"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "emails" ADD CONSTRAINT "emails_campaign_fk" FOREIGN KEY ("tenant_id","campaign_id") REFERENCES "public"."campaigns"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "emails" ADD CONSTRAINT "emails_lead_fk" FOREIGN KEY ("tenant_id","lead_id") REFERENCES "public"."leads"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "emails" ADD CONSTRAINT "emails_mailbox_fk" FOREIGN KEY ("tenant_id","mailbox_id") REFERENCES "public"."mailboxes"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "leads" ADD CONSTRAINT "leads_tenant_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mailboxes" ADD CONSTRAINT "mailboxes_domain_fk" FOREIGN KEY ("tenant_id","domain_id") REFERENCES "public"."domains"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sequence_steps" ADD CONSTRAINT "sequence_steps_campaign_fk" FOREIGN KEY ("tenant_id","campaign_id") REFERENCES "public"."campaigns"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "subscriptions" ADD CONSTRAINT "subscriptions_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_counters" ADD CONSTRAINT "usage_counters_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_hash_key" ON "api_keys" USING btree ("hash");--> statement-breakpoint
CREATE INDEX "api_keys_tenant_created_idx" ON "api_keys" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "campaign_leads_tenant_lead_idx" ON "campaign_leads" USING btree ("tenant_id","lead_id");--> statement-breakpoint
CREATE INDEX "campaign_leads_tenant_next_send_idx" ON "campaign_leads" USING btree ("tenant_id","next_send_at");--> statement-breakpoint
CREATE INDEX "campaigns_tenant_created_idx" ON "campaigns" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "campaigns_tenant_status_idx" ON "campaigns" USING btree ("tenant_id","status");--> statement-breakpoint
CREATE UNIQUE INDEX "domains_tenant_name_key" ON "domains" USING btree ("tenant_id","name");--> statement-breakpoint
CREATE INDEX "domains_tenant_created_idx" ON "domains" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "email_events_tenant_email_idx" ON "email_events" USING btree ("tenant_id","email_id","occurred_at");--> statement-breakpoint
CREATE INDEX "email_events_tenant_occurred_idx" ON "email_events" USING btree ("tenant_id","occurred_at");--> statement-breakpoint
CREATE INDEX "email_events_occurred_idx" ON "email_events" USING btree ("occurred_at");--> statement-breakpoint
CREATE INDEX "emails_tenant_created_idx" ON "emails" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "emails_tenant_campaign_idx" ON "emails" USING btree ("tenant_id","campaign_id","created_at");--> statement-breakpoint
CREATE INDEX "emails_tenant_lead_idx" ON "emails" USING btree ("tenant_id","lead_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "leads_tenant_email_key" ON "leads" USING btree ("tenant_id","email");--> statement-breakpoint
CREATE INDEX "leads_tenant_created_idx" ON "leads" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "leads_tenant_status_idx" ON "leads" USING btree ("tenant_id","status","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "mailboxes_tenant_address_key" ON "mailboxes" USING btree ("tenant_id","address");--> statement-breakpoint
CREATE INDEX "mailboxes_tenant_created_idx" ON "mailboxes" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "sequence_steps_campaign_position_key" ON "sequence_steps" USING btree ("tenant_id","campaign_id","position");--> statement-breakpoint
CREATE INDEX "subscriptions_tenant_period_idx" ON "subscriptions" USING btree ("tenant_id","period_start");--> statement-breakpoint
ALTER TABLE "tenants" ADD CONSTRAINT "tenants_limits_check" CHECK ("tenants"."daily_send_limit" >= 0 and "tenants"."max_mailboxes" >= 0);--> statement-breakpoint
CREATE POLICY "api_keys_tenant_isolation" ON "api_keys" AS PERMISSIVE FOR ALL TO public USING ("api_keys"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("api_keys"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "api_keys_lookup_by_hash" ON "api_keys" AS PERMISSIVE FOR SELECT TO public USING ("api_keys"."hash" = (select current_setting('app.api_key_hash', true)));--> statement-breakpoint
CREATE POLICY "campaign_leads_tenant_isolation" ON "campaign_leads" AS PERMISSIVE FOR ALL TO public USING ("campaign_leads"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("campaign_leads"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "campaigns_tenant_isolation" ON "campaigns" AS PERMISSIVE FOR ALL TO public USING ("campaigns"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("campaigns"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "domains_tenant_isolation" ON "domains" AS PERMISSIVE FOR ALL TO public USING ("domains"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("domains"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "email_events_tenant_isolation" ON "email_events" AS PERMISSIVE FOR ALL TO public USING ("email_events"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("email_events"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "email_events_retention" ON "email_events" AS PERMISSIVE FOR ALL TO public USING ((select current_setting('app.current_role', true)) = 'maintenance' and "email_events"."occurred_at" < now() - interval '180 days') WITH CHECK (false);--> statement-breakpoint
CREATE POLICY "emails_tenant_isolation" ON "emails" AS PERMISSIVE FOR ALL TO public USING ("emails"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("emails"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "leads_tenant_isolation" ON "leads" AS PERMISSIVE FOR ALL TO public USING ("leads"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("leads"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "mailboxes_tenant_isolation" ON "mailboxes" AS PERMISSIVE FOR ALL TO public USING ("mailboxes"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("mailboxes"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "sequence_steps_tenant_isolation" ON "sequence_steps" AS PERMISSIVE FOR ALL TO public USING ("sequence_steps"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("sequence_steps"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "subscriptions_tenant_isolation" ON "subscriptions" AS PERMISSIVE FOR ALL TO public USING ("subscriptions"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("subscriptions"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "usage_counters_tenant_isolation" ON "usage_counters" AS PERMISSIVE FOR ALL TO public USING ("usage_counters"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("usage_counters"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));