// /openapi.json served by the Worker, and calls built from it (as curl would send them) answering as it says.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { createTenant } from "../support/factories";
import { origin, request } from "../support/worker";

type Operation = { parameters?: Array<{ name: string; in: string }>; requestBody?: { content: Record<string, unknown> } };
type Doc = { openapi: string; servers: Array<{ url: string }>; paths: Record<string, Record<string, Operation>> };

/** A call made only from what the document says: its server, the path, the method, where the input goes. */
async function callFromDocument(doc: Doc, path: string, token: string, input?: unknown): Promise<Response> {
  const [method, operation] = Object.entries(doc.paths[path]!)[0]!;
  const url = new URL(doc.servers[0]!.url + path);
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  let body: string | undefined;
  const query = operation.parameters?.find((p) => p.in === "query");
  if (input !== undefined && query) url.searchParams.set(query.name, JSON.stringify(input));
  if (input !== undefined && operation.requestBody) {
    const [contentType] = Object.keys(operation.requestBody.content);
    headers["content-type"] = contentType!;
    body = JSON.stringify(input);
  }
  return request(url.pathname + url.search, { method: method.toUpperCase(), headers, body });
}

describe("/openapi.json", () => {
  it("is served without a token, with this Worker as its server", async () => {
    const response = await request("/openapi.json");
    expect(response.status).toBe(200);
    const doc = (await response.json()) as Doc;
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers).toEqual([{ url: origin }]);
    expect(doc.paths["/trpc/campaigns.create"]?.post).toBeDefined();
  });

  it("a mutation and a query built from it work: POST with a JSON body, GET with ?input=, { result: { data } }", async () => {
    const tenant = await createTenant();
    const doc = (await (await request("/openapi.json")).json()) as Doc;

    const created = await callFromDocument(doc, "/trpc/campaigns.create", tenant.member.token, { name: "From the document", startsAt: "2026-12-24T08:00:00Z" });
    expect(created.status).toBe(200);
    const { result } = (await created.json()) as { result: { data: { id: string; name: string; startsAt: string } } };
    expect(result.data).toMatchObject({ name: "From the document", startsAt: "2026-12-24T08:00:00.000Z" });

    const read = await callFromDocument(doc, "/trpc/campaigns.get", tenant.member.token, { id: result.data.id });
    expect(read.status).toBe(200);
    expect(((await read.json()) as { result: { data: { id: string } } }).result.data.id).toBe(result.data.id);

    const noInput = await callFromDocument(doc, "/trpc/users.me", tenant.member.token);
    expect(((await noInput.json()) as { result: { data: { id: string } } }).result.data.id).toBe(tenant.member.id);
  });

  it("errors have the documented shape: HTTP status = data.httpStatus, a stable data.code, the request id", async () => {
    const tenant = await createTenant();
    const doc = (await (await request("/openapi.json")).json()) as Doc;
    const bad = await callFromDocument(doc, "/trpc/campaigns.create", tenant.member.token, { name: "X", startsAt: "tomorrow" });
    expect(bad.status).toBe(400);
    const { error } = (await bad.json()) as { error: { message: string; code: number; data: { code: string; httpStatus: number; requestId: string; path: string } } };
    expect(error.data).toMatchObject({ code: "VALIDATION_FAILED", httpStatus: 400, path: "campaigns.create" });
    expect(error.data.requestId).toBe(bad.headers.get("x-request-id"));

    const forbidden = await callFromDocument(doc, "/trpc/users.setRole", tenant.member.token, { id: tenant.admin.id, role: "member" });
    expect(forbidden.status).toBe(403);
  });

  it("the reference page (outside production) reads /openapi.json", async () => {
    const response = await request("/reference");
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('data-url="/openapi.json"');
  });

  it("in production there is no reference page (the document stays)", async () => {
    // What production requires besides: a real email provider, the identity provider's issuer and audience, a public
    // DNS-over-HTTPS resolver and the Worker's public origin.
    const production = {
      ...env,
      ENVIRONMENT: "production",
      EMAIL_PROVIDER_URL: "https://mail.example.test/send",
      JWT_ISSUER: "https://idp.example.test",
      JWT_AUDIENCE: "edge-data-platform",
      DOH_RESOLVER_URL: "https://cloudflare-dns.com/dns-query",
      PUBLIC_BASE_URL: "https://api.example.test",
    };
    const app = createApp();
    const page = await app.fetch(new Request(`${origin}/reference`), production);
    expect(page.status).toBe(404);
    expect(((await page.json()) as { error: { code: string } }).error.code).toBe("ROUTE_NOT_FOUND");
    expect((await app.fetch(new Request(`${origin}/openapi.json`), production)).status).toBe(200);
  });
});
