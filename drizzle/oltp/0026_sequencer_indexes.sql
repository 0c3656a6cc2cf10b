DROP INDEX "campaign_leads_tenant_next_send_idx";--> statement-breakpoint
CREATE INDEX "campaign_leads_due_idx" ON "campaign_leads" USING btree ("tenant_id","next_send_at" NULLS FIRST,"lead_id") WHERE "campaign_leads"."status" = 'active';--> statement-breakpoint
CREATE INDEX "emails_replied_idx" ON "emails" USING btree ("tenant_id","lead_id","campaign_id") WHERE "emails"."replied_at" is not null;