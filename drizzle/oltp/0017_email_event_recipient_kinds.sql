-- Recipient facts (clicked, complained, unsubscribed through emails.recordEvent) join the email event kinds.
ALTER TABLE "email_events" DROP CONSTRAINT "email_events_type_check";--> statement-breakpoint
ALTER TABLE "email_events" ADD CONSTRAINT "email_events_type_check" CHECK ("email_events"."type" in ('queued', 'sent', 'delivered', 'bounced', 'opened', 'replied', 'failed', 'unsubscribed', 'clicked', 'complained'));--> statement-breakpoint
-- What the OLAP ETL copies beside the numbers (src/tiers/olap/etl): a lead's address and name and a step's
-- position and subject, read-only under the internal 'analytics' role, so dashboards never read OLTP.
CREATE POLICY "leads_analytics_read" ON "leads" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'analytics');
--> statement-breakpoint
CREATE POLICY "sequence_steps_analytics_read" ON "sequence_steps" AS PERMISSIVE FOR SELECT
  USING ((select current_setting('app.current_role', true)) = 'analytics');
