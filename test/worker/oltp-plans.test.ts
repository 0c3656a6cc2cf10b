import { beforeAll, describe, expect, it } from "vitest";
import { oltpSql } from "../support/factories";
import { buildEstate, type Estate } from "../support/oltp";

/**
 * Query plans under forced RLS, as the app role in a tenant's context: the tenant filter reaches
 * the (tenant_id, ...) indexes, and the policy's current_setting is an InitPlan evaluated once per
 * statement rather than a filter run per row. Sequential scans are switched off only because these
 * tables hold a handful of rows here, where the planner would rightly prefer them; which tenant index
 * wins at scale (leads_tenant_created_idx for a page) is shown by scripts/bench/oltp.ts.
 */
async function plan(tenantId: string, query: string, params: unknown[]): Promise<string> {
  const sql = oltpSql();
  const [, , rows = []] = await sql.transaction([
    sql`select set_config('app.current_tenant_id', ${tenantId}, true)`,
    sql`set local enable_seqscan = off`,
    sql.query(`explain ${query}`, params),
  ]);
  return rows.map((r) => String(r["QUERY PLAN"])).join("\n");
}

/** The tenant filter is an index condition (never a per-row filter over a scan) and the policy an InitPlan. */
function expectTenantIndexUnderRls(text: string) {
  expect(text, text).toMatch(/Index Cond: \(.*tenant_id = /);
  expect(text, text).not.toMatch(/Seq Scan/);
  expect(text, text).toMatch(/InitPlan/);
  expect(text, text).not.toMatch(/SubPlan/);
}

describe("query plans with row-level security on", () => {
  let tenant: Estate;
  beforeAll(async () => {
    tenant = await buildEstate();
  });

  it("a lead page reaches the leads through a tenant-leading index and evaluates the policy once", async () => {
    const text = await plan(tenant.tenant.id, "select * from leads where tenant_id = $1 order by created_at desc, id desc limit 26", [tenant.tenant.id]);
    expectTenantIndexUnderRls(text);
  });

  it("a campaign's steps and an email's events are read through tenant-leading indexes", async () => {
    const steps = await plan(tenant.tenant.id, "select * from sequence_steps where tenant_id = $1 and campaign_id = $2 order by position", [tenant.tenant.id, tenant.campaignId]);
    expectTenantIndexUnderRls(steps);
    const events = await plan(tenant.tenant.id, "select * from email_events where tenant_id = $1 and email_id = $2 order by occurred_at", [tenant.tenant.id, tenant.emailId]);
    expectTenantIndexUnderRls(events);
  });
});
