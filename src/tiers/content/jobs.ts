// The INDEX_CONTENT job handler: builds an email's search vector after its write.
import { z } from "zod";
import { tierStore } from "../../core/db";
import type { Env } from "../../core/env";
import type { Logger } from "../../core/logger";
import { contentConfig } from "./config";
import { systemUserId } from "./deps";
import { indexEmailContent } from "./services/search";

const payloadSchema = z.object({ emailId: z.uuid() });

export async function indexContentJob(job: { tenantId: string | null; payload: unknown }, { env }: { env: Env; logger: Logger }): Promise<void> {
  const { emailId } = payloadSchema.parse(job.payload);
  if (!job.tenantId) throw new Error("INDEX_CONTENT needs a tenant");
  await indexEmailContent(
    { store: tierStore(env, "oltp"), bucket: env.CONTENT_BUCKET, config: contentConfig },
    { tenantId: job.tenantId, userId: systemUserId, role: "member" },
    emailId,
  );
}
