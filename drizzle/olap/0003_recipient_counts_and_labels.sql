ALTER TABLE "campaign_analytics" ADD COLUMN "clicked" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "campaign_analytics" ADD COLUMN "complained" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "lead_analytics" ADD COLUMN "clicked" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "lead_analytics" ADD COLUMN "complained" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "lead_analytics" ADD COLUMN "lead_email" text;--> statement-breakpoint
ALTER TABLE "lead_analytics" ADD COLUMN "lead_name" text;--> statement-breakpoint
ALTER TABLE "mailbox_analytics" ADD COLUMN "clicked" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "mailbox_analytics" ADD COLUMN "complained" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sequence_step_analytics" ADD COLUMN "clicked" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sequence_step_analytics" ADD COLUMN "complained" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sequence_step_analytics" ADD COLUMN "step_position" integer;--> statement-breakpoint
ALTER TABLE "sequence_step_analytics" ADD COLUMN "step_subject" text;--> statement-breakpoint
ALTER TABLE "warmup_analytics" ADD COLUMN "clicked" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "warmup_analytics" ADD COLUMN "complained" integer DEFAULT 0 NOT NULL;