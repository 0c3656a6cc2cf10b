import { describe, expect, it } from "vitest";
import { contentSetup, storedKeys, toBase64 } from "../support/content";
import { oltpSql, provisionTenant } from "../support/factories";
import { operatorClient } from "../support/lifecycle";

/** Incompressible bytes, so the stored size is the attachment's own. */
const randomPdf = (size: number) => toBase64(crypto.getRandomValues(new Uint8Array(size)));

describe("content storage limit per plan", () => {
  it("an email whose content would take the tenant past its plan's storage is refused with STORAGE_LIMIT_EXCEEDED, written nowhere; within the limit it is stored", async () => {
    const s = await contentSetup();
    // A limit no plan has, so a test can reach it: set on the tenant row, where provisioning puts the plan's.
    const sql = oltpSql();
    await sql.transaction([
      sql`select set_config('app.current_tenant_id', ${s.tenant.id}, true)`,
      sql`update tenants set max_storage_bytes = 12000 where id = ${s.tenant.id}`,
    ]);
    const write = (size: number) =>
      s.client.emails.create.mutate({
        leadId: s.leadId,
        mailboxId: s.mailboxId,
        subject: "Terms",
        body: { text: "See the attachment." },
        attachments: [{ filename: "terms.pdf", mimeType: "application/pdf", content: randomPdf(size), disposition: "attachment" }],
      });

    const first = await write(6000);
    const keysAfterFirst = (await storedKeys(s.tenant.id)).sort();
    const refused = await write(8000).then(
      () => null,
      (error: { data?: { code?: string; httpStatus?: number } }) => error.data,
    );
    expect(refused).toMatchObject({ code: "STORAGE_LIMIT_EXCEEDED", httpStatus: 403 });
    // Nothing of the refused write stays: no email row, no blob.
    const emails = await s.client.emails.list.query({ leadId: s.leadId });
    expect(emails.items.map((e) => e.id)).toEqual([first.id]);
    expect((await storedKeys(s.tenant.id)).sort()).toEqual(keysAfterFirst);
    // Within what is left, writes go on.
    expect((await write(3000)).id).toBeTruthy();
  });

  it("provisioning gives a tenant its plan's storage", async () => {
    const tenant = await provisionTenant({ plan: "starter" });
    expect((await (await operatorClient()).tenants.get.query({ id: tenant.id })).maxStorageBytes).toBe(20 * 1024 ** 3);
  });
});
