CREATE TABLE "mailbox_daily_sends" (
	"tenant_id" uuid NOT NULL,
	"mailbox_id" uuid NOT NULL,
	"day" date NOT NULL,
	"sent" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "mailbox_daily_sends_pkey" PRIMARY KEY("tenant_id","mailbox_id","day"),
	CONSTRAINT "mailbox_daily_sends_sent_check" CHECK ("mailbox_daily_sends"."sent" >= 0)
);
--> statement-breakpoint
ALTER TABLE "mailbox_daily_sends" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY "mailbox_daily_sends_tenant_isolation" ON "mailbox_daily_sends" AS PERMISSIVE FOR ALL TO public USING ("mailbox_daily_sends"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)) WITH CHECK ("mailbox_daily_sends"."tenant_id" = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));