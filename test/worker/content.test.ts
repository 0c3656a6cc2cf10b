import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { tierStore } from "../../src/platform/db";
import { parseEnv } from "../../src/platform/env";
import { pruneContent } from "../../src/tiers/content/services/retention";
import { contentConfig } from "../../src/tiers/content/config";
import { bucket, callerWithR2Down, contentSetup, deliverIndexing, storedKeys, toBase64, untilQuiet } from "../support/content";
import { oltpSql } from "../support/factories";
import { expectCode, rejection } from "../support/oltp";
import { postgresRoundTrips, resetRoundTrips } from "../support/stack";
import { trpcClient } from "../support/worker";

const pdf = (label: string) => toBase64(new TextEncoder().encode(`%PDF-1.4 ${label} `.repeat(200)));
const body = (label: string) => ({ text: `Hi ${label}, a quick note about your invoice.`, html: `<p>Hi <b>${label}</b>, a quick note about your invoice.</p>`.repeat(20), headers: { "X-Campaign": label } });

async function catalog(tenantId: string) {
  const sql = oltpSql();
  const [, rows = []] = await sql.transaction([
    sql`select set_config('app.current_tenant_id', ${tenantId}, true)`,
    sql`select hash, ref_count, algorithm, raw_size, stored_size, storage_key from content_objects order by storage_key`,
  ]);
  return rows as { hash: string; ref_count: number; algorithm: string; raw_size: number; stored_size: number; storage_key: string }[];
}

// No grace period: these tests look at what the pruning reclaims, not at the race it guards against (lifecycle-consistency.test.ts).
const prune = () => pruneContent(tierStore(parseEnv(env), "oltp"), env.CONTENT_BUCKET, { batchSize: 1000, graceSeconds: 0 });

describe("the cross-tier email write", () => {
  it("stores content in R2 first, then metadata and catalog in one OLTP round trip; get decodes it exactly", async () => {
    const s = await contentSetup();
    const attachment = { filename: "quote.pdf", mimeType: "application/pdf", content: pdf("q1"), disposition: "attachment" as const };
    await resetRoundTrips();
    const email = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "Your quote", body: body("Ann"), attachments: [attachment] });
    expect((await postgresRoundTrips()).oltp).toBe(1);
    expect(email.contentStorageKey).toBe(`emails/${email.id}`);

    await resetRoundTrips();
    const content = await s.client.content.get.query({ emailId: email.id });
    expect((await postgresRoundTrips()).oltp).toBe(1);
    expect(content).toMatchObject({ subject: "Your quote", ...body("Ann"), attachments: [{ position: 1, filename: "quote.pdf", mimeType: "application/pdf" }] });
    const file = await s.client.content.attachment.query({ emailId: email.id, position: 1 });
    expect(file.content).toBe(attachment.content);

    const objects = await catalog(s.tenant.id);
    expect(objects).toHaveLength(2);
    for (const o of objects) {
      expect(o.storage_key).toBe(`tenants/${s.tenant.id}/objects/${o.hash}`);
      expect(o.algorithm).not.toBe("raw");
      expect(Number(o.stored_size)).toBeLessThan(Number(o.raw_size) / 3);
    }
    expect((await storedKeys(s.tenant.id)).sort()).toEqual(objects.map((o) => o.storage_key).sort());
  });

  it("stores already-compressed attachments raw, when compression does not pay", async () => {
    const s = await contentSetup();
    const random = toBase64(crypto.getRandomValues(new Uint8Array(20_000)));
    await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "zip", body: body("Z"), attachments: [{ filename: "a.zip", mimeType: "application/zip", content: random, disposition: "attachment" }] });
    const zip = (await catalog(s.tenant.id)).find((o) => Number(o.raw_size) === 20_000);
    expect(zip).toMatchObject({ algorithm: "raw" });
  });

  it("a retry with the same idempotency key returns the first email and creates nothing more", async () => {
    const s = await contentSetup();
    const input = { leadId: s.leadId, mailboxId: s.mailboxId, subject: "Once", body: body("Bo"), idempotencyKey: `key-${crypto.randomUUID()}` };
    const first = await s.client.emails.create.mutate(input);
    const second = await s.client.emails.create.mutate(input);
    expect(second.id).toBe(first.id);
    expect((await s.client.emails.list.query({})).items).toHaveLength(1);
    expect((await catalog(s.tenant.id)).map((o) => o.ref_count)).toEqual([1]);
  });

  it("a failed OLTP step leaves no blob behind and no metadata", async () => {
    const s = await contentSetup();
    const refused = await rejection(
      s.client.emails.create.mutate({ leadId: crypto.randomUUID(), mailboxId: s.mailboxId, subject: "x", body: body("Lost"), attachments: [{ filename: "f.pdf", mimeType: "application/pdf", content: pdf("lost"), disposition: "attachment" }] }),
    );
    expect(refused.code).toBe("NOT_FOUND");
    expect(await storedKeys(s.tenant.id)).toEqual([]);
    expect(await catalog(s.tenant.id)).toEqual([]);
    expect((await s.client.emails.list.query({})).items).toEqual([]);
  });

  it("refuses oversized bodies and attachments with PAYLOAD_TOO_LARGE and unlisted types with VALIDATION_FAILED, writing nothing", async () => {
    const s = await contentSetup();
    const base = { leadId: s.leadId, mailboxId: s.mailboxId, subject: "big" };
    const half = "x".repeat(Math.ceil(contentConfig.maxBodyBytes / 2) + 10);
    expect((await rejection(s.client.emails.create.mutate({ ...base, body: { text: half, html: half } }))).httpStatus).toBe(413);
    const tooBig = toBase64(new Uint8Array(contentConfig.maxAttachmentBytes + 1));
    await expectCode(s.client.emails.create.mutate({ ...base, body: body("L"), attachments: [{ filename: "big.pdf", mimeType: "application/pdf", content: tooBig, disposition: "attachment" }] }), "PAYLOAD_TOO_LARGE");
    await expectCode(s.client.emails.create.mutate({ ...base, body: body("L"), attachments: [{ filename: "run.exe", mimeType: "application/x-msdownload", content: pdf("e"), disposition: "attachment" }] }), "VALIDATION_FAILED");
    await expectCode(s.client.emails.create.mutate({ ...base, body: body("L"), attachments: [{ filename: "bad.pdf", mimeType: "application/pdf", content: "%%%not base64", disposition: "attachment" }] }), "VALIDATION_FAILED");
    expect((await s.client.emails.list.query({})).items).toEqual([]);
    expect(await storedKeys(s.tenant.id)).toEqual([]);
  });
});

describe("dedup, reference counts and retention", () => {
  it("identical content inside a tenant is stored once; deleting one sharer leaves the other readable until the last goes", async () => {
    const s = await contentSetup();
    const attachment = { filename: "terms.pdf", mimeType: "application/pdf", content: pdf("shared"), disposition: "attachment" as const };
    const create = (subject: string) => s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject, body: body("Same"), attachments: [attachment] });
    const [a, b] = [await create("one"), await create("two")];
    expect((await catalog(s.tenant.id)).map((o) => o.ref_count)).toEqual([2, 2]);
    expect(await storedKeys(s.tenant.id)).toHaveLength(2);

    await s.client.emails.delete.mutate({ id: a.id });
    await prune();
    expect((await catalog(s.tenant.id)).map((o) => o.ref_count)).toEqual([1, 1]);
    expect((await s.client.content.get.query({ emailId: b.id })).text).toBe(body("Same").text);
    expect((await s.client.content.attachment.query({ emailId: b.id, position: 1 })).content).toBe(attachment.content);
    await expectCode(s.client.content.get.query({ emailId: a.id }), "NOT_FOUND");

    await s.client.emails.delete.mutate({ id: b.id });
    await prune();
    expect(await catalog(s.tenant.id)).toEqual([]);
    expect(await storedKeys(s.tenant.id)).toEqual([]);
  });

  it("a legal hold pauses deletion; lifting it lets the pruning cron reclaim", async () => {
    const s = await contentSetup();
    const email = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "held", body: body("Hold") });
    expect(await s.client.content.setRetention.mutate({ legalHold: true })).toEqual({ retentionDays: 365, legalHold: true });
    await s.client.emails.delete.mutate({ id: email.id });
    await prune();
    expect(await storedKeys(s.tenant.id)).toHaveLength(1);
    await s.client.content.setRetention.mutate({ legalHold: false });
    await prune();
    expect(await storedKeys(s.tenant.id)).toEqual([]);
    await expectCode(trpcClient(s.tenant.member.token).content.setRetention.mutate({ legalHold: false }), "FORBIDDEN");
  });

  it("never dedups across tenants: the same bytes get separate blobs, and another tenant's email is NOT_FOUND", async () => {
    const a = await contentSetup();
    const b = await contentSetup();
    const input = (s: typeof a) => ({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "same", body: body("Twin") });
    const emailA = await a.client.emails.create.mutate(input(a));
    await b.client.emails.create.mutate(input(b));
    const [keyA] = await storedKeys(a.tenant.id);
    const [keyB] = await storedKeys(b.tenant.id);
    expect(keyA).toBeDefined();
    expect(keyB).toBeDefined();
    expect(keyA).not.toBe(keyB);
    await expectCode(b.client.content.get.query({ emailId: emailA.id }), "NOT_FOUND");
    await expectCode(b.client.content.attachment.query({ emailId: emailA.id, position: 1 }), "NOT_FOUND");
    await b.client.emails.delete.mutate({ id: emailA.id }).catch(() => undefined);
    expect((await a.client.content.get.query({ emailId: emailA.id })).text).toBe(body("Twin").text);
  });
});

describe("integrity and outages", () => {
  it("a blob that no longer matches its hash is refused and raises a system event", async () => {
    const s = await contentSetup();
    const email = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "tamper", body: body("T") });
    const [key] = await storedKeys(s.tenant.id);
    const stored = await bucket().get(key!);
    const original = await stored!.arrayBuffer();
    await bucket().put(key!, new TextEncoder().encode("tampered"), { customMetadata: stored!.customMetadata ?? {} });
    expect((await rejection(s.client.content.get.query({ emailId: email.id }))).httpStatus).toBe(500);
    const events = await s.client.admin.systemEvents.list.query({});
    expect(events.items.map((e) => e.eventType)).toContain("content.integrity_failed");
    await bucket().put(key!, original, { customMetadata: stored!.customMetadata ?? {} });
    expect((await s.client.content.get.query({ emailId: email.id })).text).toBe(body("T").text);
  });

  it("with R2 down, content answers SERVICE_UNAVAILABLE naming content, creates write nothing, and OLTP metadata stays readable", async () => {
    const s = await contentSetup();
    const email = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "up", body: body("Up") });
    const down = callerWithR2Down(s.tenant);
    await expect(down.content.get({ emailId: email.id })).rejects.toMatchObject({ code: "SERVICE_UNAVAILABLE", cause: { tier: "content" } });
    await expect(down.emails.create({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "down", body: body("Down"), attachments: [] })).rejects.toMatchObject({
      code: "SERVICE_UNAVAILABLE",
      cause: { tier: "content" },
    });
    expect((await down.emails.get({ id: email.id })).subject).toBe("up");
    expect((await down.emails.list({})).items.map((e) => e.id)).toEqual([email.id]);
  });
});

describe("search", () => {
  it("ranks subject matches first, matches prefixes, highlights, and returns only the tenant's own emails", async () => {
    const s = await contentSetup();
    const other = await contentSetup();
    const create = (c: typeof s, subject: string, text: string) => c.client.emails.create.mutate({ leadId: c.leadId, mailboxId: c.mailboxId, subject, body: { text, html: "", headers: {} } });
    const inBody = await create(s, "Catching up", "The quarterly invoice is attached for your records.");
    const inSubject = await create(s, "Invoice reminder", "Please see the invoice below; the invoice is due Friday.");
    const unrelated = await create(s, "Lunch", "Tacos on Tuesday?");
    const foreign = await create(other, "Invoice for other tenant", "Secret invoice text");
    expect((await deliverIndexing(s.tenant.id, [inBody.id, inSubject.id, unrelated.id])).explicitAcks).toHaveLength(3);
    await deliverIndexing(other.tenant.id, [foreign.id]);

    await untilQuiet();
    await resetRoundTrips();
    const hits = await s.client.content.search.query({ query: "invo" });
    expect((await postgresRoundTrips()).oltp).toBe(1);
    expect(hits.map((h) => h.emailId)).toEqual([inSubject.id, inBody.id]);
    expect(hits[0]!.highlight).toContain("<mark>Invoice</mark>");
    expect(await s.client.content.search.query({ query: "secret" })).toEqual([]);
    expect((await other.client.content.search.query({ query: "invoice" })).map((h) => h.emailId)).toEqual([foreign.id]);
    expect(await s.client.content.search.query({ query: "!!!" })).toEqual([]);
  });
});
