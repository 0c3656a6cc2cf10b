// The OLTP tier's jobs: the invitation email, recorded with its invitation (outbox) and sent after the response.
import { z } from "zod";
import { AppError } from "../../platform/errors";
import { defineJob } from "../../platform/jobs/define";
import { sendInvitationEmail } from "./services/invitations";

export const sendInvitationJob = defineJob({
  type: "SEND_INVITATION",
  payload: z.object({ invitationId: z.uuid(), acceptUrl: z.url().max(2000) }).strict(),
  queue: "high",
  ledger: true,
  // At most the high queue's max_retries + 1 (wrangler.toml); an unreachable provider backs off.
  maxAttempts: 6,
  backoff: { baseSeconds: 10, maxSeconds: 900 },
  run: async ({ tenantId, payload, services }) => {
    if (!tenantId) throw new AppError("VALIDATION_FAILED", "SEND_INVITATION needs a tenant");
    return { progress: await sendInvitationEmail(services, tenantId, payload) };
  },
});
