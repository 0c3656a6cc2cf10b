// Content tier tasks run by the cron triggers: pruning unreferenced and expired content, and queueing lost indexing jobs again.
import { sql } from "drizzle-orm";
import { defineCron } from "../../platform/cron";
import { internalBatch } from "../../platform/db";
import { rowsOf } from "../../platform/rows";
import { contentPruning, indexingGraceMinutes } from "./config";
import { indexContentJob } from "./jobs";
import { pruneContent } from "./services/retention";

export const contentCrons = [
  defineCron({
    name: "content.prune",
    schedule: "pruning",
    async run(services) {
      const report = await pruneContent(services.store("oltp"), services.env.CONTENT_BUCKET, contentPruning);
      services.logger.info("pruned content", { ...report });
    },
  }),
  defineCron({
    name: "content.requeueIndexing",
    schedule: "consistency",
    async run(services) {
      // The 'maintenance' role: the email_contents policy shows it unindexed rows of every tenant.
      const [result] = await internalBatch(services.store("oltp"), "maintenance", null, (db) => [
        db.execute(sql`select tenant_id, email_id from email_contents
                       where indexed_at is null and created_at < now() - make_interval(mins => ${indexingGraceMinutes})
                       order by created_at limit 1000`),
      ]);
      const rows = rowsOf(result);
      await services.jobs.send(rows.map((r) => services.jobs.direct(indexContentJob.type, String(r.tenant_id), { emailId: String(r.email_id) })));
      services.logger.info("requeued content indexing", { jobs: rows.length });
    },
  }),
];
