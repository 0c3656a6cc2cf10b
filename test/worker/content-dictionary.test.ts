import { env } from "cloudflare:workers";
import { brotliCompressSync } from "node:zlib";
import { describe, expect, inject, it } from "vitest";
import { tierStore } from "../../src/platform/db";
import { parseEnv } from "../../src/platform/env";
import { pruneContent } from "../../src/tiers/content/services/retention";
import { bucket, contentSetup, fromBase64, storedKeys } from "../support/content";
import { personalise, recipient } from "../support/content-campaign";
import { oltpSql } from "../support/factories";
import { expectCode, rejection } from "../support/oltp";

const corpus = inject("contentCorpus");
const decoder = new TextDecoder();
const template = (folder: string, name: string) => {
  const file = corpus.find((f) => f.folder === folder && f.name === name);
  if (!file) throw new Error(`corpus file ${folder}/${name} missing`);
  return decoder.decode(fromBase64(file.base64));
};
const postmark = () => template("postmark", "templates-inlined_basic-full_invoice_content.html");
const mailchimp = () => template("mailchimp", "templates_simple-basic.html");
/** 83 KB: beyond deflate's 32 KiB reach, so only the segmented encoding keeps its renders small. */
const mailchimpLarge = () => template("mailchimp", "modular-template-patterns_modular-template-patterns.html");

interface CatalogRow {
  hash: string;
  kind: string;
  ref_count: number;
  algorithm: string;
  dictionary_hash: string | null;
  raw_size: string;
  stored_size: string;
  storage_key: string;
}

async function catalog(tenantId: string): Promise<CatalogRow[]> {
  const sql = oltpSql();
  const [, rows = []] = await sql.transaction([
    sql`select set_config('app.current_tenant_id', ${tenantId}, true)`,
    sql`select hash, kind, ref_count, algorithm, dictionary_hash, raw_size, stored_size, storage_key from content_objects order by kind, storage_key`,
  ]);
  return rows as CatalogRow[];
}

// No grace period: these tests look at what the pruning reclaims, not at the race it guards against (lifecycle-consistency.test.ts).
const prune = () => pruneContent(tierStore(parseEnv(env), "oltp"), env.CONTENT_BUCKET, { batchSize: 1000, graceSeconds: 0 });

async function sendRenders(s: Awaited<ReturnType<typeof contentSetup>>, templateHtml: string, from: number, count: number) {
  const emails: { id: string; html: string }[] = [];
  for (let i = from; i < from + count; i++) {
    const html = personalise(templateHtml, recipient(i));
    const email = await s.client.emails.create.mutate({
      leadId: s.leadId,
      mailboxId: s.mailboxId,
      subject: `Invoice for ${recipient(i).company}`,
      body: { text: "", html, headers: { "X-Recipient": recipient(i).email }, template: templateHtml },
    });
    emails.push({ id: email.id, html });
  }
  return emails;
}

describe.skipIf(corpus.length === 0)("campaign renders compressed against their template", () => {
  it("round-trips byte-exact; the template is one referenced object and a render stores under 5% of its raw size", async () => {
    const s = await contentSetup();
    for (const templateHtml of [postmark(), mailchimp(), mailchimpLarge()]) {
      const renders = await sendRenders(s, templateHtml, 0, 5);
      for (const r of renders) expect((await s.client.content.get.query({ emailId: r.id })).html).toBe(r.html);
    }
    const rows = await catalog(s.tenant.id);
    const templates = rows.filter((r) => r.kind === "template");
    const bodies = rows.filter((r) => r.kind === "body");
    expect(templates).toHaveLength(3);
    expect(templates.map((t) => t.ref_count)).toEqual([5, 5, 5]);
    expect(bodies).toHaveLength(15);
    for (const b of bodies) {
      expect(b.algorithm).toBe("deflate-dict");
      expect(templates.map((t) => t.hash)).toContain(b.dictionary_hash);
      expect(Number(b.stored_size) / Number(b.raw_size)).toBeLessThan(0.05);
    }
    expect((await storedKeys(s.tenant.id)).sort()).toEqual(rows.map((r) => r.storage_key).sort());
  });

  it("the template lives while any render needs it: deleting renders drops its count, the last one reclaims it", async () => {
    const s = await contentSetup();
    const [a, b] = await sendRenders(s, postmark(), 100, 2);
    await s.client.emails.delete.mutate({ id: a!.id });
    await prune();
    const after = await catalog(s.tenant.id);
    expect(after.map((r) => [r.kind, r.ref_count])).toEqual([["body", 1], ["template", 1]]);
    expect((await s.client.content.get.query({ emailId: b!.id })).html).toBe(b!.html);

    await s.client.emails.delete.mutate({ id: b!.id });
    await prune();
    await prune();
    expect(await catalog(s.tenant.id)).toEqual([]);
    expect(await storedKeys(s.tenant.id)).toEqual([]);
  });

  it("bytes first stored without a template keep their encoding, and the template is not counted for them", async () => {
    const s = await contentSetup();
    const html = personalise(postmark(), recipient(7));
    const input = { leadId: s.leadId, mailboxId: s.mailboxId, subject: "same bytes", body: { text: "", html, headers: {} } };
    const plain = await s.client.emails.create.mutate(input);
    const render = await s.client.emails.create.mutate({ ...input, body: { ...input.body, template: postmark() } });
    const rows = await catalog(s.tenant.id);
    expect(rows.map((r) => [r.kind, r.algorithm, r.ref_count])).toEqual([["body", "br", 2], ["template", "br", 0]]);
    expect((await s.client.content.get.query({ emailId: render.id })).html).toBe(html);
    await s.client.emails.delete.mutate({ id: plain.id });
    await s.client.emails.delete.mutate({ id: render.id });
    await prune();
    expect(await storedKeys(s.tenant.id)).toEqual([]);
  });

  it("a template that no longer matches its hash is never used to decode: INTERNAL, not other bytes", async () => {
    const s = await contentSetup();
    const [render] = await sendRenders(s, mailchimp(), 200, 1);
    const templateRow = (await catalog(s.tenant.id)).find((r) => r.kind === "template")!;
    const stored = await bucket().get(templateRow.storage_key);
    await bucket().put(templateRow.storage_key, new TextEncoder().encode("tampered"), { customMetadata: stored!.customMetadata ?? {} });
    expect((await rejection(s.client.content.get.query({ emailId: render!.id }))).httpStatus).toBe(500);
  });

  it("a template above the body limit is PAYLOAD_TOO_LARGE and writes nothing", async () => {
    const s = await contentSetup();
    // Under the input bound in characters, over the byte limit in UTF-8: the service measures bytes.
    const huge = "é".repeat(600_000);
    await expectCode(
      s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "big", body: { text: "hi", html: "", headers: {}, template: huge } }),
      "PAYLOAD_TOO_LARGE",
    );
    expect(await storedKeys(s.tenant.id)).toEqual([]);
  });

  it("workerd's brotli ignores a dictionary (why only deflate is given one)", () => {
    const templateBytes = new TextEncoder().encode(postmark());
    const render = new TextEncoder().encode(personalise(postmark(), recipient(1)));
    const plain = brotliCompressSync(render);
    const withDictionary = brotliCompressSync(render, { dictionary: templateBytes } as object);
    expect(withDictionary.byteLength).toBe(plain.byteLength);
  });
});
