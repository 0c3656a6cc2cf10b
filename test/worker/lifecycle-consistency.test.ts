import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { contentConfig } from "../../src/tiers/content/config";
import { testServices } from "../support/runtime";
import { createEmailWithContent } from "../../src/tiers/oltp/services/email-writes";
import { purgeTombstones, tombstoneContent } from "../../src/tiers/content/services/retention";
import { catalogStatements, prepareEmailContent, storeContent } from "../../src/tiers/content/services/writes";
import { createEmail } from "../../src/tiers/oltp/services/emails";
import { contentSetup, storedKeys, toBase64 } from "../support/content";
import { aggregate } from "../support/olap";
import { startedCampaign } from "../support/oltp";
import { asRole, operatorClient, redis, sha256Hex, store } from "../support/lifecycle";

const pdf = (label: string) => toBase64(new TextEncoder().encode(`%PDF-1.4 ${label} ${crypto.randomUUID()}`));
const body = (text: string) => ({ text, html: `<p>${text}</p>`, headers: { "x-test": "1" } });

async function catalogRow(tenantId: string, hash: string) {
  const [rows = []] = await asRole("oltp", "lifecycle", (sql) => [sql`select * from content_objects where tenant_id = ${tenantId} and hash = ${hash}`]);
  return rows[0];
}

describe("the consistency checker", () => {
  it("reports zero findings on a clean estate, then finds and handles every injected inconsistency kind", async () => {
    const s = await contentSetup();
    const operator = await operatorClient();
    const campaign = await startedCampaign(s.tenant.admin.token, 1);
    const attachment = { filename: "a.pdf", mimeType: "application/pdf", content: pdf("a"), disposition: "attachment" as const };
    const a = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, campaignId: campaign.id, subject: "A", body: body("alpha"), attachments: [attachment] });
    const b = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "B", body: body("bravo") });
    await aggregate();

    const check = () => operator.lifecycle.checkConsistency.mutate({ tenantId: s.tenant.id, orphanGraceSeconds: 0 });
    const clean = await check();
    for (const kind of Object.values(clean.kinds)) expect(kind).toEqual({ found: 0, repaired: 0, needsAttention: 0 });

    // (a) an email whose body object R2 no longer holds
    const [parts = []] = await asRole("oltp", "lifecycle", (sql) => [
      sql`select p.email_id, p.position, o.hash, o.storage_key from email_content_parts p join content_objects o on o.tenant_id = p.tenant_id and o.hash = p.hash
          where p.tenant_id = ${s.tenant.id} order by p.email_id, p.position`,
    ]);
    const bBody = parts.find((p) => p.email_id === b.id && p.position === 0)!;
    await env.CONTENT_BUCKET.delete(String(bBody.storage_key));
    // (b) an R2 object nothing references (a failed write's leftover)
    const orphanBytes = new TextEncoder().encode(`orphan ${crypto.randomUUID()}`);
    const orphanKey = `tenants/${s.tenant.id}/objects/${await sha256Hex(orphanBytes)}`;
    await env.CONTENT_BUCKET.put(orphanKey, orphanBytes);
    // (c) a reference count that disagrees with the parts using the object
    const aBody = parts.find((p) => p.email_id === a.id && p.position === 0)!;
    await asRole("oltp", "lifecycle", (sql) => [sql`update content_objects set ref_count = 5 where tenant_id = ${s.tenant.id} and hash = ${String(aBody.hash)}`]);
    // (d) a cached unread count Redis would serve that Postgres disagrees with (it holds none)
    await redis().hset(`notif:unread:${s.tenant.id}`, { [`c:${s.tenant.member.id}`]: JSON.stringify({ n: 7, until: Date.now() + 120_000, tv: null, uv: null }) });
    expect(await operatorlessUnread(s.tenant.member.token)).toBe(7);
    // (e) an OLAP total that disagrees with its source facts
    await asRole("olap", "analytics", (sql) => [sql`update campaign_analytics set queued = queued + 5 where tenant_id = ${s.tenant.id} and campaign_id = ${campaign.id}`]);
    // (f) a job stuck running past its lease
    await asRole("oltp", "system", (sql) => [sql`update jobs set status = 'running', started_at = now() - interval '2 hours' where id = ${a.id}`]);

    const report = await check();
    expect(report.kinds.missingContent).toEqual({ found: 1, repaired: 0, needsAttention: 1 });
    expect(report.kinds.orphanBlobs).toEqual({ found: 1, repaired: 1, needsAttention: 0 });
    expect(report.kinds.refCounts).toEqual({ found: 1, repaired: 1, needsAttention: 0 });
    expect(report.kinds.unreadCache).toEqual({ found: 1, repaired: 1, needsAttention: 0 });
    expect(report.kinds.olapTotals).toEqual({ found: 1, repaired: 0, needsAttention: 1 });
    expect(report.kinds.stuckJobs).toEqual({ found: 1, repaired: 1, needsAttention: 0 });

    // Repairs took effect in each store.
    expect(await env.CONTENT_BUCKET.head(orphanKey)).toBeNull();
    expect((await catalogRow(s.tenant.id, String(aBody.hash)))?.ref_count).toBe(1);
    expect(await operatorlessUnread(s.tenant.member.token)).toBe(0);
    const [job = []] = await asRole("oltp", "system", (sql) => [sql`select status from jobs where id = ${a.id}`]);
    expect(job[0]?.status).toBe("pending");
    expect((await storedKeys(s.tenant.id)).sort()).not.toContain(orphanKey);

    // What needs a person is one open, de-duplicated system event per kind; a second run counts a repeat.
    const again = await check();
    expect(again.kinds.missingContent.needsAttention).toBe(1);
    expect(again.kinds.refCounts.found + again.kinds.orphanBlobs.found + again.kinds.unreadCache.found + again.kinds.stuckJobs.found).toBe(0);
    const [events = []] = await asRole("notifications", "system", (sql) => [
      sql`select dedup_key, occurrences from admin_system_events where tenant_id = ${s.tenant.id} and event_type = 'lifecycle.inconsistency' and not is_resolved order by dedup_key`,
    ]);
    expect(events).toEqual([
      { dedup_key: "lifecycle.consistency:missingContent", occurrences: 2 },
      { dedup_key: "lifecycle.consistency:olapTotals", occurrences: 2 },
    ]);
  });

  it("keeps a young unreferenced upload (grace period) and answers FORBIDDEN to a tenant admin", async () => {
    const s = await contentSetup();
    const operator = await operatorClient();
    const bytes = new TextEncoder().encode(`fresh upload ${crypto.randomUUID()}`);
    const key = `tenants/${s.tenant.id}/objects/${await sha256Hex(bytes)}`;
    await env.CONTENT_BUCKET.put(key, bytes);
    const report = await operator.lifecycle.checkConsistency.mutate({ tenantId: s.tenant.id });
    expect(report.kinds.orphanBlobs.found).toBe(0);
    expect(await env.CONTENT_BUCKET.head(key)).not.toBeNull();
    await expect(s.client.lifecycle.checkConsistency.mutate({ tenantId: s.tenant.id })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
  });
});

async function operatorlessUnread(token: string): Promise<number> {
  const { trpcClient } = await import("../support/worker");
  return (await trpcClient(token, { batch: false }).notifications.unreadCount.query()).unread;
}

describe("content pruning against re-use (issue 5's race)", () => {
  const purgeNow = () => purgeTombstones(store("oltp"), env.CONTENT_BUCKET, { batchSize: 1000, graceSeconds: 0, keepPurgedSeconds: 3600 });
  const attachmentOf = (content: string) => [{ filename: "x.pdf", mimeType: "application/pdf", content, disposition: "attachment" as const }];

  it("a blob whose count reached zero is not purged when a write re-referenced it between tombstone and purge", async () => {
    const s = await contentSetup();
    const shared = pdf("shared");
    const first = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "1", body: body("one"), attachments: attachmentOf(shared) });
    await s.client.emails.delete.mutate({ id: first.id });
    expect(await tombstoneContent(store("oltp"), 1000)).toBeGreaterThanOrEqual(2);
    const second = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "2", body: body("two"), attachments: attachmentOf(shared) });
    await purgeNow();
    expect((await s.client.content.attachment.query({ emailId: second.id, position: 1 })).content).toBe(shared);

    // The control: with nothing re-using it, the same sequence purges the blob.
    const lone = pdf("lone");
    const third = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "3", body: body("three"), attachments: attachmentOf(lone) });
    const before = await storedKeys(s.tenant.id);
    await s.client.emails.delete.mutate({ id: third.id });
    await tombstoneContent(store("oltp"), 1000);
    await purgeNow();
    expect((await storedKeys(s.tenant.id)).length).toBe(before.length - 2);
  });

  it("a write that found the blob in R2 before the purge deleted it fails its commit and succeeds on the retry, re-storing the bytes", async () => {
    const s = await contentSetup();
    const scope = { tenantId: s.tenant.id, userId: s.tenant.admin.id, role: "admin" as const };
    const bytes = pdf("in-flight");
    const old = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "old", body: body("old"), attachments: attachmentOf(bytes) });
    await s.client.emails.delete.mutate({ id: old.id });
    await tombstoneContent(store("oltp"), 1000);

    // The write's R2 step runs (the blob is still there, so it is re-used, not written) ...
    const input = { leadId: s.leadId, mailboxId: s.mailboxId, subject: "new", body: body("new"), attachments: attachmentOf(bytes) };
    const prepared = await prepareEmailContent(s.tenant.id, input, contentConfig);
    const stored = await storeContent(env.CONTENT_BUCKET, prepared, contentConfig);
    expect(stored.created).toHaveLength(1); // the new body; the attachment's blob was found, not written
    // ... the purge deletes the blob before the write's OLTP step ...
    expect(await purgeNow()).toBeGreaterThanOrEqual(1);
    // ... so the commit refuses to point at it.
    const id = crypto.randomUUID();
    await expect(
      createEmail(testServices(), scope, { leadId: s.leadId, mailboxId: s.mailboxId, subject: "new", contentStorageKey: `emails/${id}`, id }, (db) =>
        catalogStatements(db, s.tenant.id, { id, subject: "new" }, prepared, stored),
      ),
    ).rejects.toThrow();

    // The full write retries and stores the bytes again.
    const { email } = await createEmailWithContent(testServices(), scope, input);
    expect((await s.client.content.attachment.query({ emailId: email.id, position: 1 })).content).toBe(bytes);
  });
});
