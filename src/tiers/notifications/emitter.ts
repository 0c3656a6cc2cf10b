// The system-event raiser the notifications tier implements for every tier: the incident board, de-duplicated per
// condition, mirrored at once to the external log sink. While the notifications database is down an event is kept
// on the queue (RAISE_SYSTEM_EVENT, retried with backoff) and written on recovery: the de-duplication key makes a
// late write count as the same incident, never a second one.
import { z } from "zod";
import type { SystemEventInput, SystemEvents } from "../../platform/emitters";
import { severities } from "../../platform/emitters";
import { AppError } from "../../platform/errors";
import { defineJob } from "../../platform/jobs/define";
import type { Services } from "../../platform/services";
import { notificationsConfig } from "./config";
import { raiseSystemEvent } from "./services/system-events";

type Raised = SystemEventInput & { dedupKey: string };

const unavailable = (error: unknown) => error instanceof AppError && error.code === "SERVICE_UNAVAILABLE";

export function systemEvents(services: Services): SystemEvents {
  const raise: SystemEvents["raise"] = async (input) => {
    services.telemetry.log("system_event", {
      eventType: input.eventType,
      severity: input.severity,
      description: input.description,
      tenantId: input.tenantId ?? null,
      dedupKey: input.dedupKey,
      details: input.details ?? null,
    });
    try {
      await raiseSystemEvent(services.store("notifications"), notificationsConfig, input);
    } catch (error) {
      if (!unavailable(error)) throw error;
      // The board is down: the queue holds the event until it is back. Only if the queue refuses too is it lost
      // to the board (the log sink has it), and the caller hears so.
      await services.jobs.sendOrThrow([services.jobs.direct("RAISE_SYSTEM_EVENT", input.tenantId ?? null, input)]);
      services.logger.warn("system event queued until the notifications database is back", { eventType: input.eventType, dedupKey: input.dedupKey });
    }
  };
  return {
    raise,
    async raiseQuietly(input, context) {
      try {
        await raise(input);
      } catch (error) {
        services.logger.error("system event not raised", { eventType: input.eventType, ...context, error });
      }
    },
  };
}

/** A system event raised while the notifications database was down; retried until it is back (then dead-lettered, to be redriven). */
export const raiseSystemEventJob = defineJob({
  type: "RAISE_SYSTEM_EVENT",
  payload: z.object({
    eventType: z.string().min(1).max(200),
    severity: z.enum(severities),
    description: z.string().max(10_000),
    details: z.record(z.string(), z.unknown()).optional(),
    tenantId: z.uuid().nullable().optional(),
    userId: z.uuid().nullable().optional(),
    dedupKey: z.string().min(1).max(500),
  }),
  queue: "normal",
  ledger: false,
  // As many attempts as the normal queue carries; with full jitter they span up to about 45 minutes.
  maxAttempts: 6,
  backoff: { baseSeconds: 60, maxSeconds: 900 },
  run: async ({ payload, services }) => {
    await raiseSystemEvent(services.store("notifications"), notificationsConfig, payload as Raised);
  },
});
