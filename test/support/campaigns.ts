// Campaign engine test helpers: a sequencer tick delivered through a clocked Worker, as the cron's job would run it.
import { oltpSql } from "./factories";
import { env } from "cloudflare:workers";
import { internalBatch, tierStore } from "../../src/platform/db";
import { parseEnv } from "../../src/platform/env";
import type { clockedWorker } from "./clock";
import { asOltpSystem, ledgerRow } from "./jobs";
import { prepareJobs, queueNames } from "./runtime";

/**
 * Commits a SEQUENCE_CAMPAIGNS ledger row as the cron does, and delivers it (and what it enqueues on
 * the normal queue) at the worker's clock; a failed attempt (a slow shared machine) is delivered again,
 * as the queue would.
 */
export async function tick(worker: ReturnType<typeof clockedWorker>): Promise<void> {
  const prepared = prepareJobs(null, [{ type: "SEQUENCE_CAMPAIGNS", payload: {} }], worker.clock);
  await internalBatch(tierStore(parseEnv(env), "oltp"), "system", null, (db) => [prepared.insert(db)]);
  const message = prepared.messages[0]!.message;
  for (let attempt = 0; attempt < 3; attempt++) {
    worker.held.JOBS_NORMAL.held.push(message);
    for (let round = 0; (await worker.deliver("JOBS_NORMAL", queueNames.normal)) > 0; round++) {
      // Bounded: a message put back at once, every time, would otherwise spin here until the test's timeout.
      if (round >= 200) throw new Error(`the normal queue was still delivering after 200 rounds: ${JSON.stringify(worker.held.JOBS_NORMAL.held.map((m) => m.type))}`);
    }
    if ((await ledgerRow(message.jobId))?.status !== "pending") return;
  }
}

/**
 * Pauses every campaign that is running or scheduled now. Test files run one after another on one database, and a
 * tick sequences every tenant: campaigns an earlier file left would fall due at a test's clock (weeks ahead) and
 * their sends would run in that test's deliveries, as much work as the earlier files happened to leave (the campaign
 * e2e took 108 s in a whole pass of the worker files against 28 s on its own, and a CI run timed it out at 15 minutes).
 * Files of the project run one at a time (fileParallelism: false), so nothing running is another file's. Call it
 * before creating the test's own campaigns.
 */
export async function pauseLeftoverCampaigns(): Promise<number> {
  // The system role may read every tenant's campaigns but change none: each tenant's are paused under its own context.
  const [tenants = []] = await asOltpSystem((sql) => [sql`select distinct tenant_id from campaigns where status in ('running', 'scheduled')`]);
  if (tenants.length === 0) return 0;
  const sql = oltpSql();
  const results = await sql.transaction(
    tenants.flatMap(({ tenant_id }) => [
      sql`select set_config('app.current_tenant_id', ${String(tenant_id)}, true)`,
      sql`update campaigns set status = 'paused' where tenant_id = ${String(tenant_id)} and status in ('running', 'scheduled') returning id`,
    ]),
  );
  const paused = results.filter((_, i) => i % 2 === 1).reduce((n, rows) => n + (rows as unknown[]).length, 0);
  // A leftover running campaign makes every tick of the test visit its tenant: the pause must have taken.
  const [left = []] = await asOltpSystem((q) => [q`select count(*)::int as n from campaigns where status in ('running', 'scheduled')`]);
  if (Number(left[0]?.n) !== 0) throw new Error(`pauseLeftoverCampaigns left ${left[0]?.n} campaigns running or scheduled`);
  return paused;
}
