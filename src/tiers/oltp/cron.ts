// OLTP tier tasks run by the cron triggers (see src/cron.ts for the schedules): email event retention.
import type { TierCronTasks } from "../../cron";
import { mapDbError, tierStore } from "../../core/db";
import { emailEventRetentionDays } from "./schema";

/** Bounds one run's work; a backlog drains over successive nights. */
const pruneBatch = 50_000;

/**
 * Deletes email events past retention in every tenant. No tenant context is set: the `maintenance`
 * role context is admitted by the email_events_retention policy, and for old rows only.
 */
export const oltpCron: TierCronTasks = {
  pruning: [
    {
      name: "oltp.pruneEmailEvents",
      async run({ env, logger }) {
        const store = tierStore(env, "oltp");
        try {
          const [, result = []] = await store.sql.transaction([
            store.sql`select set_config('app.current_role', 'maintenance', true)`,
            store.sql`with pruned as (
                        delete from email_events where id in (
                          select id from email_events
                          where occurred_at < now() - make_interval(days => ${emailEventRetentionDays})
                          limit ${pruneBatch})
                        returning 1)
                      select count(*)::int as deleted from pruned`,
          ]);
          logger.info("pruned email events", { deleted: result[0]?.deleted ?? 0, retentionDays: emailEventRetentionDays });
        } catch (error) {
          throw mapDbError("oltp", error);
        }
      },
    },
  ],
};
