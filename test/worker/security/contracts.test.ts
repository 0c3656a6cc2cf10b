// Issue 14, finding 7: contract slips a strict black-box run found, each as its class where there is one.
import { describe, expect, it } from "vitest";
import { contentConfig } from "../../../src/tiers/content/config";
import { contentSetup, deliverIndexing, untilQuiet } from "../../support/content";
import { createTenant } from "../../support/factories";
import { asRole } from "../../support/lifecycle";
import { campaignWithSteps, expectCode, fakeEmail, rejection, startedCampaign } from "../../support/oltp";
import { request, trpcClient } from "../../support/worker";
import { errorData, procedures, send } from "./router-walk";

describe("emails.create checks its campaign and step", () => {
  it("an unknown or another tenant's campaign is NOT_FOUND; a step must be the campaign's (or, alone, the tenant's)", async () => {
    const s = await contentSetup();
    const other = await contentSetup();
    const ours = await startedCampaign(s.tenant.admin.token, 1);
    const second = await startedCampaign(s.tenant.admin.token, 1);
    const theirs = await campaignWithSteps(other.tenant.admin.token, 1);
    const stepOf = async (token: string, id: string) => (await trpcClient(token, { batch: false }).campaigns.get.query({ id })).steps[0]!.id as string;
    const ourStep = await stepOf(s.tenant.admin.token, ours.id);
    const secondStep = await stepOf(s.tenant.admin.token, second.id);
    const theirStep = await stepOf(other.tenant.admin.token, theirs.id);
    const create = (extra: { campaignId?: string; stepId?: string }) =>
      s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "Hi", contentStorageKey: `bodies/${crypto.randomUUID()}`, ...extra });

    await expectCode(create({ campaignId: crypto.randomUUID() }), "NOT_FOUND");
    await expectCode(create({ campaignId: theirs.id }), "NOT_FOUND");
    await expectCode(create({ campaignId: ours.id, stepId: crypto.randomUUID() }), "NOT_FOUND");
    await expectCode(create({ campaignId: ours.id, stepId: theirStep }), "NOT_FOUND");
    await expectCode(create({ campaignId: ours.id, stepId: secondStep }), "NOT_FOUND");
    await expectCode(create({ stepId: theirStep }), "NOT_FOUND");
    expect((await s.client.emails.list.query({})).items).toHaveLength(0);

    const withBoth = await create({ campaignId: ours.id, stepId: ourStep });
    expect(withBoth).toMatchObject({ campaignId: ours.id, stepId: ourStep });
    // A step given alone records its campaign.
    expect(await create({ stepId: secondStep })).toMatchObject({ campaignId: second.id, stepId: secondStep });
  });
});

describe("size limits answer 413", () => {
  it("a body part above the body limit is PAYLOAD_TOO_LARGE, like parts that exceed it together", async () => {
    const s = await contentSetup();
    const big = "x".repeat(1.5 * 1024 * 1024);
    const send_ = (body: { text?: string; html?: string; template?: string }) =>
      s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "Big", body: { text: "", html: "", headers: {}, ...body } });
    for (const body of [{ text: big }, { html: big }, { text: "t", template: big }, { text: "y".repeat(600 * 1024), html: "z".repeat(600 * 1024) }]) {
      const error = await rejection(send_(body));
      expect(error).toMatchObject({ code: "PAYLOAD_TOO_LARGE", httpStatus: 413 });
    }
  });
});

describe("billing counts the leads a tenant creates", () => {
  it("create, upsert and bulk upsert count new leads once; merges count nothing", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.admin.token, { batch: false });
    const known = fakeEmail();
    await client.leads.create.mutate({ email: known });
    await client.leads.upsert.mutate({ email: known.toUpperCase(), firstName: "Merged" });
    await client.leads.upsert.mutate({ email: fakeEmail() });
    await client.leads.bulkUpsert.mutate({ leads: [{ email: known }, { email: fakeEmail() }, { email: fakeEmail() }, { email: fakeEmail() }] });
    const billing = await client.tenants.billing.query();
    expect(billing.usage.reduce((sum, u) => sum + u.leadsCreated, 0)).toBe(5);
  });
});

describe("any accepted body can be indexed", () => {
  it("a 1,000,000-character body whose words exceed the tsvector limit is indexed on its documented prefix, not retried", async () => {
    const s = await contentSetup();
    // Hyphenated words index as the whole and each part, so their lexemes outgrow the text: > 1 MB of tsvector.
    let seed = 42;
    const nextLetter = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return String.fromCharCode(97 + (seed % 26));
    };
    const letters = (n: number) => Array.from({ length: n }, nextLetter).join("");
    const words: string[] = ["zebrafirst"];
    let length = words[0]!.length;
    while (length < 1_000_000 - 40) {
      const word = `${letters(9)}-${letters(9)}`;
      words.push(word);
      length += word.length + 1;
    }
    words.push("quokkalast");
    const text = words.join(" ");
    expect(text.length).toBeLessThanOrEqual(1_000_000);
    expect(contentConfig.searchIndexChars).toBeLessThan(text.length);
    const email = await s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject: "Huge", body: { text, html: "", headers: {} } });
    const delivery = await deliverIndexing(s.tenant.id, [email.id]);
    expect(delivery.explicitAcks).toHaveLength(1);
    expect(delivery.retryMessages).toHaveLength(0);
    await untilQuiet();
    expect((await s.client.content.search.query({ query: "zebrafirst" })).map((h) => h.emailId)).toEqual([email.id]);
    // Beyond the prefix: not indexed, as documented.
    expect(await s.client.content.search.query({ query: "quokkalast" })).toEqual([]);
    const [[row] = []] = await asRole("oltp", "lifecycle", (sql) => [sql`select indexed_at from email_contents where email_id = ${email.id}`], s.tenant.id);
    expect(row?.indexed_at).not.toBeNull();
  }, 60_000);
});

describe("a call without input is a call with no fields", () => {
  it("GET /trpc/leads.list with no input lists", async () => {
    const tenant = await createTenant();
    const response = await request("/trpc/leads.list", { headers: { authorization: `Bearer ${tenant.member.token}` } });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(((await response.json()) as { result: { data: unknown } }).result.data).toMatchObject({ items: [], nextCursor: null });
  });

  for (const { path, type } of procedures) {
    it(`${path}: no input answers as {} does`, async () => {
      const tenant = await createTenant();
      const empty = await send(path, type, {}, tenant.admin.token);
      const none = await send(path, type, undefined, tenant.admin.token);
      expect({ status: none.status, code: none.status >= 400 ? errorData(none)?.code : null }, none.text.slice(0, 200)).toEqual({
        status: empty.status,
        code: empty.status >= 400 ? errorData(empty)?.code : null,
      });
    });
  }

  it("a body-less mutation without Content-Type is served; a body without its type is still 415", async () => {
    const tenant = await createTenant();
    const bare = await request("/trpc/notifications.markAllRead", { method: "POST", headers: { authorization: `Bearer ${tenant.member.token}` } });
    expect(bare.status, await bare.clone().text()).toBe(200);
    const typeless = await request("/trpc/notifications.markAllRead", { method: "POST", headers: { authorization: `Bearer ${tenant.member.token}`, "content-type": "" }, body: "{}" });
    const text = await typeless.text();
    expect(typeless.status, text).toBe(415);
    expect(JSON.parse(text).error.data.code).toBe("UNSUPPORTED_MEDIA_TYPE");
  });
});
