// `npm run seed -- --tenants 3 --leads 500`: fills the database of a running `npm run dev` at a realistic size.
// Everything goes through the API with the typed client, as an operator and an app would: each tenant and its first
// admin are provisioned by an operator (tenants.create, idempotent by its client key), then the admin adds a member,
// a verified domain, two mailboxes, a campaign with three steps, leads in bulk, enrolled in the campaign, a notification.
// It reads each tenant's leads back and prints a token per tenant.
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { createClient, isClientError } from "../src/client/index";
import { maxBulkItems } from "../src/platform/paging";
import { dataDir, mintDevToken } from "./dev-config";

const { values } = parseArgs({
  options: { tenants: { type: "string", default: "1" }, leads: { type: "string", default: "100" }, url: { type: "string" } },
});
const args = z
  .object({ tenants: z.coerce.number().int().min(1).max(100), leads: z.coerce.number().int().min(0).max(100_000), url: z.url().optional() })
  .safeParse(values);
if (!args.success) {
  for (const issue of args.error.issues) console.error(`--${issue.path.join(".")}: ${issue.message}`);
  process.exit(2);
}

const stackFile = path.join(dataDir, "dev-stack.json");
if (!existsSync(stackFile)) {
  console.error(`No ${path.relative(process.cwd(), stackFile)}: start \`npm run dev\` first (same EDP_DATA_DIR).`);
  process.exit(1);
}
const stack = JSON.parse(readFileSync(stackFile, "utf8")) as { url: string; oltpOwnerUrl: string; dnsRecordsUrl?: string };
const url = args.data.url ?? stack.url;

/** Retries a call the server refused for its rate (RATE_LIMITED) after a pause, up to 5 times. */
async function patiently<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isClientError(error, "RATE_LIMITED") || attempt === 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
}

/** An operator provisions the tenant and its first admin (tenants.create); the admin's token does the rest. */
async function provisionTenant(operator: ReturnType<typeof createClient>, index: number) {
  const key = randomUUID();
  const created = await patiently(() =>
    operator.tenants.create.mutate({
      name: `Seed tenant ${index} (${new Date().toISOString().slice(0, 16)})`,
      plan: "pro",
      admin: { email: `admin@seed-${key.slice(0, 8)}.example` },
      clientKey: `seed:${key}`,
    }),
  );
  return { tenant: created.tenant, token: await mintDevToken({ sub: created.admin.id, tenant_id: created.tenant.id, role: "admin" }) };
}

async function fillTenant(token: string, tag: string, leadCount: number): Promise<number> {
  const client = createClient({ url, token });
  await patiently(() => client.users.add.mutate({ email: `member@seed-${tag}.example`, name: "Seed member", role: "member" }));
  const domain = await patiently(() => client.domains.add.mutate({ name: `mail.seed-${tag}.example.com` }));
  // Publish the records domains.add asked for on the stack's DNS-over-HTTPS endpoint, then verify: its mailboxes may send.
  if (stack.dnsRecordsUrl) {
    for (const record of domain.dnsRecords) {
      await fetch(stack.dnsRecordsUrl, { method: "PUT", body: JSON.stringify({ name: record.host, type: record.type, values: [record.value] }) });
    }
    await patiently(() => client.domains.verify.mutate({ id: domain.id }));
  }
  for (const local of ["hello", "team"]) {
    await patiently(() => client.mailboxes.add.mutate({ domainId: domain.id, address: `${local}@${domain.name}`, dailyLimit: 200 }));
  }
  const campaign = await patiently(() =>
    client.campaigns.create.mutate({ name: "Seed campaign", timeZone: "Europe/Paris", windowStartMinute: 540, windowEndMinute: 1020, sendDays: [1, 2, 3, 4, 5] }),
  );
  await patiently(() =>
    client.campaigns.setSteps.mutate({
      id: campaign.id,
      steps: [0, 72, 168].map((delayHours, step) => ({
        delayHours,
        variants: [{ label: "A", subject: `Step ${step + 1}`, bodyStorageKey: `seed/step-${step + 1}` }],
      })),
    }),
  );
  const companies = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark"];
  for (let start = 0; start < leadCount; start += maxBulkItems) {
    const leads = Array.from({ length: Math.min(maxBulkItems, leadCount - start) }, (_, i) => ({
      email: `lead${start + i}@${companies[(start + i) % companies.length]!.toLowerCase()}-${tag}.example`,
      firstName: `Lead${start + i}`,
      company: companies[(start + i) % companies.length]!,
      customFields: { source: "seed", score: (start + i) % 100 },
    }));
    const { ids } = await patiently(() => client.leads.bulkUpsert.mutate({ leads }));
    await patiently(() => client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: ids }));
  }
  await patiently(() => client.notifications.create.mutate({ type: "seed.ready", title: "Seed data ready", message: `${leadCount} leads in "Seed campaign".` }));

  // Read back what a user would see.
  let listed = 0;
  let cursor: string | undefined;
  do {
    const page = await patiently(() => client.leads.list.query({ limit: 100, ...(cursor ? { cursor } : {}) }));
    listed += page.items.length;
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return listed;
}

const operator = createClient({ url, token: await mintDevToken({ sub: randomUUID(), tenant_id: randomUUID(), role: "operator" }) });
const provisioned: Array<Awaited<ReturnType<typeof provisionTenant>>> = [];
for (let i = 1; i <= args.data.tenants; i++) provisioned.push(await provisionTenant(operator, i));
const started = performance.now();
for (const { tenant, token } of provisioned) {
  const listed = await fillTenant(token, tenant.id.slice(0, 8), args.data.leads);
  if (listed !== args.data.leads) throw new Error(`tenant ${tenant.id}: ${listed} leads listed, ${args.data.leads} seeded`);
  console.log(`${tenant.name} (${tenant.id}): ${listed} leads, 1 campaign with 3 steps, 2 mailboxes, 2 users\n  admin token: ${token}`);
}
console.log(`seeded ${args.data.tenants} tenant(s) × ${args.data.leads} leads through ${url} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
