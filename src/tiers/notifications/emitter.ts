// The system-event raiser the notifications tier implements for every tier: the incident board, de-duplicated per condition.
import type { SystemEvents } from "../../platform/emitters";
import type { Services } from "../../platform/services";
import { notificationsConfig } from "./config";
import { raiseSystemEvent } from "./services/system-events";

export function systemEvents(services: Services): SystemEvents {
  const raise: SystemEvents["raise"] = async (input) => {
    await raiseSystemEvent(services.store("notifications"), notificationsConfig, input);
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
