// The typed job message every queue carries: a reference to a ledger row, never a copy of big data.
import { z } from "zod";

export const jobTypes = ["NOOP", "SEND_NOTIFICATION"] as const;
export type JobType = (typeof jobTypes)[number];

export const jobMessageSchema = z.object({
  jobId: z.uuid(),
  type: z.enum(jobTypes),
  tenantId: z.uuid().nullable(),
  payload: z.record(z.string(), z.unknown()).default({}),
  enqueuedAt: z.iso.datetime(),
});
export type JobMessage = z.infer<typeof jobMessageSchema>;

/** Queue names as declared in wrangler.toml; the consumer tells them apart by batch.queue. */
export const queueNames = {
  high: "edp-jobs-high",
  normal: "edp-jobs-normal",
  low: "edp-jobs-low",
  dead: "edp-jobs-dead",
} as const;
