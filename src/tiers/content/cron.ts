// Content tier tasks run by the cron triggers: pruning unreferenced and expired content, and queueing lost indexing jobs again.
import type { TierCronTasks } from "../../cron";
import { mapDbError, tierStore } from "../../core/db";
import { indexingJob } from "./deps";
import { pruneContent } from "./services/retention";

/** Catalog rows per run, and how long a tombstoned blob waits before it leaves R2 (see PruneOptions). */
export const contentPruning = { batchSize: 1000, graceSeconds: 3600 };
/** An email not indexed this long after its write lost its INDEX_CONTENT job. */
const indexingGraceMinutes = 15;

export const contentCron: TierCronTasks = {
  pruning: [
    {
      name: "content.prune",
      async run({ env, logger }) {
        const report = await pruneContent(tierStore(env, "oltp"), env.CONTENT_BUCKET, contentPruning);
        logger.info("pruned content", { ...report });
      },
    },
  ],
  consistency: [
    {
      name: "content.requeueIndexing",
      async run({ env, logger }) {
        const store = tierStore(env, "oltp");
        let rows: Record<string, unknown>[];
        try {
          [, rows = []] = await store.sql.transaction([
            store.sql`select set_config('app.current_role', 'maintenance', true)`,
            store.sql`select tenant_id, email_id from email_contents
                      where indexed_at is null and created_at < now() - make_interval(mins => ${indexingGraceMinutes})
                      order by created_at limit 1000`,
          ]);
        } catch (error) {
          throw mapDbError("oltp", error);
        }
        const jobs = rows.map((r) => ({ body: indexingJob(String(r.tenant_id), String(r.email_id)) }));
        for (let i = 0; i < jobs.length; i += 100) await env.JOBS_NORMAL.sendBatch(jobs.slice(i, i + 100));
        logger.info("requeued content indexing", { jobs: jobs.length });
      },
    },
  ],
};
