import { describe, expect, it } from "vitest";
import { contentConfig } from "../../src/tiers/content/config";
import { bucket, contentSetup, storedKeys } from "../support/content";
import { oltpSql } from "../support/factories";
import { expectCode } from "../support/oltp";
import { request } from "../support/worker";

/** Deterministic incompressible bytes, like the PDFs and archives that are sent as large attachments. */
function fileOf(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = seed | 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
const sha256 = async (bytes: Uint8Array) => hex(await crypto.subtle.digest("SHA-256", bytes));

/** The body as a stream with a declared length, as an HTTP client sends a file. */
function upload(token: string, hash: string, bytes: Uint8Array, init: { type?: string; length?: number } = {}) {
  const { readable, writable } = new FixedLengthStream(init.length ?? bytes.byteLength);
  const writer = writable.getWriter();
  void (async () => {
    for (let i = 0; i < bytes.byteLength; i += 64 * 1024) await writer.write(bytes.subarray(i, i + 64 * 1024)).catch(() => undefined);
    await writer.close().catch(() => undefined);
  })();
  return request(`/v1/content/attachments/${hash}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": init.type ?? "application/pdf", "content-length": String(init.length ?? bytes.byteLength) },
    body: readable,
    duplex: "half",
  } as RequestInit);
}

describe("large attachments stream in and out", () => {
  it("a 12 MB file streams into R2 raw, an email refers to it by sha256, and the GET route streams it back byte-exact with its type", async () => {
    const s = await contentSetup();
    const file = fileOf(12 * 1024 * 1024, 7);
    const hash = await sha256(file);
    const put = await upload(s.tenant.admin.token, hash, file);
    expect(put.status).toBe(201);
    expect(await put.json()).toEqual({ sha256: hash, size: file.byteLength, created: true });
    // The same bytes again: already held, nothing read or written.
    expect((await upload(s.tenant.admin.token, hash, file)).status).toBe(200);

    const email = await s.client.emails.create.mutate({
      leadId: s.leadId,
      mailboxId: s.mailboxId,
      subject: "The full report",
      body: { text: "Attached.", html: "", headers: {} },
      attachments: [{ filename: "report 2026.pdf", mimeType: "application/pdf", sha256: hash, disposition: "attachment" }],
    });
    const got = await request(`/v1/content/emails/${email.id}/attachments/1`, { headers: { authorization: `Bearer ${s.tenant.member.token}` } });
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toBe("application/pdf");
    expect(got.headers.get("content-disposition")).toBe("attachment; filename*=UTF-8''report%202026.pdf");
    expect(await sha256(new Uint8Array(await got.arrayBuffer()))).toBe(hash);
    expect((await s.client.content.get.query({ emailId: email.id })).attachments).toMatchObject([{ position: 1, size: file.byteLength, mimeType: "application/pdf" }]);
    // Too large for base64 in JSON: the procedure points at the stream instead of building it.
    await expectCode(s.client.content.attachment.query({ emailId: email.id, position: 1 }), "PAYLOAD_TOO_LARGE");

    const sql = oltpSql();
    const [, rows = []] = await sql.transaction([
      sql`select set_config('app.current_tenant_id', ${s.tenant.id}, true)`,
      sql`select algorithm, raw_size, stored_size, ref_count from content_objects where hash = ${hash}`,
    ]);
    expect(rows).toEqual([{ algorithm: "raw", raw_size: String(file.byteLength), stored_size: String(file.byteLength), ref_count: 1 }]);
  });

  it("refuses above the cap before reading, bytes that do not match the hash, unlisted types and anonymous callers; nothing is stored", async () => {
    const s = await contentSetup();
    const token = s.tenant.admin.token;
    const file = fileOf(256 * 1024, 11);
    const hash = await sha256(file);

    const tooBig = await upload(token, hash, file, { length: contentConfig.maxStreamedAttachmentBytes + 1 });
    expect(tooBig.status).toBe(413);
    expect(await tooBig.json()).toMatchObject({ error: { code: "PAYLOAD_TOO_LARGE" } });

    const wrongHash = await upload(token, await sha256(fileOf(10, 1)), file);
    expect(wrongHash.status).toBe(400);
    expect(await wrongHash.json()).toMatchObject({ error: { code: "VALIDATION_FAILED" } });

    const badType = await upload(token, hash, file, { type: "application/x-msdownload" });
    expect(badType.status).toBe(400);

    const anonymous = await request(`/v1/content/attachments/${hash}`, { method: "PUT", body: file });
    expect(anonymous.status).toBe(401);

    expect(await storedKeys(s.tenant.id)).toEqual([]);
    // An email cannot refer to bytes that were never uploaded.
    await expectCode(
      s.client.emails.create.mutate({
        leadId: s.leadId,
        mailboxId: s.mailboxId,
        subject: "missing",
        body: { text: "x", html: "", headers: {} },
        attachments: [{ filename: "a.pdf", mimeType: "application/pdf", sha256: hash, disposition: "attachment" }],
      }),
      "NOT_FOUND",
    );
    expect((await s.client.emails.list.query({})).items).toEqual([]);
  });

  it("a streamed download whose bytes no longer match fails instead of completing; another tenant gets NOT_FOUND, a bad id 400", async () => {
    const s = await contentSetup();
    const other = await contentSetup();
    const file = fileOf(6 * 1024 * 1024, 3);
    const hash = await sha256(file);
    expect((await upload(s.tenant.admin.token, hash, file)).status).toBe(201);
    const email = await s.client.emails.create.mutate({
      leadId: s.leadId,
      mailboxId: s.mailboxId,
      subject: "tamper",
      body: { text: "x", html: "", headers: {} },
      attachments: [{ filename: "a.pdf", mimeType: "application/pdf", sha256: hash, disposition: "attachment" }],
    });
    const path = `/v1/content/emails/${email.id}/attachments/1`;
    expect((await request(path, { headers: { authorization: `Bearer ${other.tenant.admin.token}` } })).status).toBe(404);
    expect((await request(`/v1/content/emails/not-an-id/attachments/1`, { headers: { authorization: `Bearer ${s.tenant.admin.token}` } })).status).toBe(400);

    const key = `tenants/${s.tenant.id}/objects/${hash}`;
    const stored = await bucket().get(key);
    const metadata = stored!.customMetadata ?? {};
    await stored!.arrayBuffer();
    await bucket().put(key, fileOf(6 * 1024 * 1024, 4), { customMetadata: metadata });
    const got = await request(path, { headers: { authorization: `Bearer ${s.tenant.admin.token}` } });
    await expect(got.arrayBuffer()).rejects.toThrow();
  });
});
