import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
// @ts-expect-error Vite serves any file as text with ?raw
import lifecycleDoc from "../../docs/lifecycle.md?raw";
// @ts-expect-error Vite serves any file as text with ?raw
import readme from "../../README.md?raw";
import worker from "../../src/index";
import type { DbTier } from "../../src/platform/db";
import { schedules } from "../support/runtime";
import { readmeTableEnd, readmeTableStart, renderRetentionTable, retentionRules } from "../../src/lifecycle/retention";
import { contentSetup } from "../support/content";
import { asRole, operatorClient } from "../support/lifecycle";

const roleFor: Record<DbTier, "lifecycle" | "analytics"> = { oltp: "lifecycle", notifications: "lifecycle", olap: "analytics" };

async function tablesOf(tier: DbTier): Promise<string[]> {
  const [rows = []] = await asRole(tier, roleFor[tier], (sql) => [
    sql`select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition and c.relname not like '\\_\\_%' order by 1`,
  ]);
  return rows.map((r) => String(r.relname));
}

describe("retention you can see", () => {
  it("the retention table in docs/lifecycle.md is the one rendered from the config (and the README keeps no copy)", () => {
    const text: string = lifecycleDoc;
    const table = text.slice(text.indexOf(readmeTableStart) + readmeTableStart.length, text.indexOf(readmeTableEnd)).trim();
    expect(table).toBe(renderRetentionTable());
    expect((readme as string).includes(readmeTableStart), "the retention table lives in docs/lifecycle.md, not README.md").toBe(false);
  });

  it("every table of the three databases has a rule", async () => {
    for (const tier of ["oltp", "notifications", "olap"] as const) {
      const listed = retentionRules.filter((r) => r.store === tier).map((r) => r.name).sort();
      expect(await tablesOf(tier)).toEqual(listed);
    }
  });

  it("an operator's report gives each table's rows and oldest row in one round trip per database", async () => {
    await contentSetup();
    const operator = await operatorClient();
    const report = await operator.lifecycle.retentionReport.query();
    expect(report.map((r) => r.table).sort()).toEqual(retentionRules.map((r) => r.name).sort());
    const tenants = report.find((r) => r.table === "tenants")!;
    expect(tenants.rows).toBeGreaterThan(0);
    expect(tenants.oldest).not.toBeNull();
  });

  it("twelve simulated months of activity, pruned after each month, leave no row older than its rule", async () => {
    const s = await contentSetup();
    const t = s.tenant.id;
    const prune = () => worker.scheduled(createScheduledController({ cron: schedules.pruning, scheduledTime: new Date() }), env, createExecutionContext());
    for (let month = 12; month >= 0; month--) {
      const at = `${month * 30 + 1} days`;
      const email = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: `m${month}`, contentStorageKey: `bodies/${crypto.randomUUID()}` });
      await asRole("oltp", "lifecycle", (sql) => [
        sql`insert into email_events (tenant_id, email_id, type, occurred_at) values (${t}, ${email.id}, 'sent', now() - ${at}::interval)`,
        sql`insert into jobs (tenant_id, type, payload, priority, max_attempts, status, completed_at) values (${t}, 'NOOP', '{}', 'normal', 3, 'succeeded', now() - ${at}::interval), (${t}, 'NOOP', '{}', 'normal', 3, 'dead', now() - ${at}::interval)`,
        sql`insert into content_tombstones (tenant_id, hash, storage_key, tombstoned_at) values (${t}, ${crypto.randomUUID()}, ${`tenants/${t}/objects/none-${month}`}, now() - ${at}::interval)`,
      ], t);
      await asRole("notifications", "system", (sql) => [
        sql`insert into notifications (tenant_id, user_id, type, title, message, created_at) values (${t}, ${s.tenant.member.id}, 'x', 'old', 'old', now() - ${at}::interval)`,
        sql`insert into admin_system_events (event_type, severity, tenant_id, description, created_at) values ('x', 'low', ${t}, 'old', now() - ${at}::interval)`,
      ], t);
      await prune();
      for (const rule of retentionRules.filter((r) => r.maxAgeDays !== undefined && r.store !== "olap" && r.store !== "r2" && r.store !== "redis")) {
        const tier = rule.store as DbTier;
        const [rows = []] = await asRole(tier, roleFor[tier], (sql) => [
          sql`select count(*)::int as n from ${sql.unsafe(`"${rule.name}"`)} t
              where ${sql.unsafe(`t."${rule.ageColumn}"`)} < now() - make_interval(days => ${rule.maxAgeDays!}) ${sql.unsafe(rule.where ? `and ${rule.where}` : "")}`,
        ]);
        expect({ month, table: rule.name, older: Number(rows[0]?.n) }).toEqual({ month, table: rule.name, older: 0 });
      }
    }
  });
});
