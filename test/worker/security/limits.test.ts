// Issue 14, finding 2: one HTTP request carries at most TRPC_MAX_BATCH calls, and every procedure and browser route
// counts against the caller's API limits (per principal, per tenant), answering RATE_LIMITED with Retry-After.
import { Ratelimit } from "@upstash/ratelimit";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { createWorker } from "../../../src/index";
// Bare tenants (createBareTenant): the limits count every call, so the tenant must start with none spent (provisioning makes some).
import { createBareTenant } from "../../support/factories";
import { redis } from "../../support/lifecycle";
import { fakeEmail } from "../../support/oltp";
import { setRedisFault } from "../../support/stack";
import { mintToken } from "../../support/tokens";
import { origin, request, trpcClient } from "../../support/worker";
import { errorData, procedures } from "./router-walk";

/** A Worker on this environment with some variables overridden; each request's background work is awaited. */
function workerWith(vars: Record<string, string>) {
  const worker = createWorker();
  const testEnv = { ...env, ...vars };
  return async (path: string, init: RequestInit = {}) => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(new Request(new URL(path, origin), init), testEnv, ctx);
    const text = await response.text();
    await waitOnExecutionContext(ctx);
    return { status: response.status, text, headers: response.headers };
  };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

afterEach(() => setRedisFault("none"));

describe("tRPC batches are bounded", () => {
  it("eleven bulk upserts in one request are refused whole with BATCH_TOO_LARGE; ten are served", async () => {
    const tenant = await createBareTenant();
    const batch = (n: number) => {
      const paths = Array.from({ length: n }, () => "leads.bulkUpsert").join(",");
      const body = Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), { leads: [{ email: fakeEmail() }] }]));
      return request(`/trpc/${paths}?batch=1`, { method: "POST", headers: { ...bearer(tenant.admin.token), "content-type": "application/json" }, body: JSON.stringify(body) });
    };
    const refused = await batch(11);
    const text = await refused.text();
    expect(refused.status, text).toBe(400);
    expect(errorData({ status: refused.status, text, headers: refused.headers })?.code).toBe("BATCH_TOO_LARGE");
    expect(JSON.parse(text).error.message).toContain("at most 10");
    const client = trpcClient(tenant.admin.token, { batch: false });
    expect((await client.leads.list.query({})).items).toHaveLength(0);
    expect((await batch(10)).status).toBe(200);
    expect((await client.leads.list.query({ limit: 100 })).items).toHaveLength(10);
  });

  it("the limit comes from TRPC_MAX_BATCH", async () => {
    const tenant = await createBareTenant();
    const fetch = workerWith({ TRPC_MAX_BATCH: "2" });
    expect((await fetch("/trpc/tenants.current,tenants.current?batch=1&input={}", { headers: bearer(tenant.member.token) })).status).toBe(200);
    const three = await fetch("/trpc/tenants.current,tenants.current,tenants.current?batch=1&input={}", { headers: bearer(tenant.member.token) });
    expect(three.status).toBe(400);
    expect(JSON.parse(three.text).error.data.code).toBe("BATCH_TOO_LARGE");
  });

  for (const { path, type } of procedures) {
    it(`${path}: a batch of 11 is refused before any call runs`, async () => {
      const tenant = await createBareTenant();
      const paths = Array.from({ length: 11 }, () => path).join(",");
      const input = encodeURIComponent(JSON.stringify(Object.fromEntries(Array.from({ length: 11 }, (_, i) => [String(i), {}]))));
      const response =
        type === "query"
          ? await request(`/trpc/${paths}?batch=1&input=${input}`, { headers: bearer(tenant.admin.token) })
          : await request(`/trpc/${paths}?batch=1`, { method: "POST", headers: { ...bearer(tenant.admin.token), "content-type": "application/json" }, body: "{}" });
      const text = await response.text();
      expect(response.status, text.slice(0, 200)).toBe(400);
      expect(JSON.parse(text).error.data.code).toBe("BATCH_TOO_LARGE");
    });
  }
});

describe("per-caller API rate limits", () => {
  it("a principal over its limit gets 429 RATE_LIMITED with Retry-After, on tRPC and on the browser route", async () => {
    const tenant = await createBareTenant();
    const fetch = workerWith({ API_RATE_LIMIT_PER_PRINCIPAL: "5" });
    for (let i = 0; i < 5; i++) expect((await fetch("/trpc/tenants.current", { headers: bearer(tenant.member.token) })).status).toBe(200);
    const limited = await fetch("/trpc/tenants.current", { headers: bearer(tenant.member.token) });
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.text).error.data).toMatchObject({ code: "RATE_LIMITED", httpStatus: 429 });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get("retry-after"))).toBeLessThanOrEqual(60);

    const badge = await fetch("/v1/notifications/unread-count", { headers: bearer(tenant.member.token) });
    expect(badge.status).toBe(429);
    expect(JSON.parse(badge.text).error.code).toBe("RATE_LIMITED");
    expect(Number(badge.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Another principal of the same tenant is not held up by this one.
    expect((await fetch("/trpc/tenants.current", { headers: bearer(tenant.admin.token) })).status).toBe(200);
  });

  it("calls in a batch count one each", async () => {
    const tenant = await createBareTenant();
    const fetch = workerWith({ API_RATE_LIMIT_PER_PRINCIPAL: "5" });
    const four = await fetch("/trpc/tenants.current,tenants.current,tenants.current,tenants.current?batch=1&input={}", { headers: bearer(tenant.member.token) });
    expect(four.status).toBe(200);
    const two = await fetch("/trpc/tenants.current,tenants.current?batch=1&input={}", { headers: bearer(tenant.member.token) });
    expect((JSON.parse(two.text) as Array<{ error?: { data: { code: string } } }>).map((r) => r.error?.data.code ?? "ok")).toEqual(["ok", "RATE_LIMITED"]);
    expect(Number(two.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("the tenant's limit holds across its principals", async () => {
    const tenant = await createBareTenant();
    const fetch = workerWith({ API_RATE_LIMIT_PER_PRINCIPAL: "5", API_RATE_LIMIT_PER_TENANT: "8" });
    for (let i = 0; i < 5; i++) expect((await fetch("/trpc/tenants.current", { headers: bearer(tenant.member.token) })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await fetch("/trpc/tenants.current", { headers: bearer(tenant.admin.token) })).status).toBe(200);
    const limited = await fetch("/trpc/tenants.current", { headers: bearer(tenant.admin.token) });
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.text).error.data.details).toMatchObject({ limiter: "api:tenant" });
  });

  it("what other isolates counted in Redis is enforced here (the count is reconciled through @upstash/ratelimit)", async () => {
    const tenant = await createBareTenant();
    // Another isolate has used the principal's whole window, as recorded in Redis by the same limiter.
    const elsewhere = new Ratelimit({ redis: redis(), prefix: "api:rl:principal", limiter: Ratelimit.slidingWindow(5, "60 s"), ephemeralCache: false });
    await elsewhere.limit(`${tenant.id}:${tenant.member.id}`, { rate: 5 });
    const fetch = workerWith({ API_RATE_LIMIT_PER_PRINCIPAL: "5" });
    // This isolate has let nothing through yet, so the first call passes; its report comes back refused.
    expect((await fetch("/trpc/tenants.current", { headers: bearer(tenant.member.token) })).status).toBe(200);
    const limited = await fetch("/trpc/tenants.current", { headers: bearer(tenant.member.token) });
    expect(limited.status).toBe(429);
  });

  it("Redis down: the API keeps serving (fail open), and the isolate's own count still refuses above the limit", async () => {
    const tenant = await createBareTenant();
    const fetch = workerWith({ API_RATE_LIMIT_PER_PRINCIPAL: "3" });
    await setRedisFault("down");
    for (let i = 0; i < 3; i++) expect((await fetch("/trpc/tenants.current", { headers: bearer(tenant.member.token) })).status).toBe(200);
    expect((await fetch("/trpc/tenants.current", { headers: bearer(tenant.member.token) })).status).toBe(429);
  });

  it("an UPPER-CASE spelling of the same ids in a token draws on the same buckets", async () => {
    const tenant = await createBareTenant();
    const fetch = workerWith({ API_RATE_LIMIT_PER_PRINCIPAL: "2" });
    const upper = await mintToken({ sub: tenant.member.id.toUpperCase(), tenant_id: tenant.id.toUpperCase(), role: "member" });
    expect((await fetch("/trpc/tenants.current", { headers: bearer(tenant.member.token) })).status).toBe(200);
    expect((await fetch("/trpc/tenants.current", { headers: bearer(upper) })).status).toBe(200);
    expect((await fetch("/trpc/tenants.current", { headers: bearer(upper) })).status).toBe(429);
  });

  describe("every procedure counts against the limit", async () => {
    const tenant = await createBareTenant();
    const fetch = workerWith({ API_RATE_LIMIT_PER_PRINCIPAL: "1" });
    const token = await mintToken({ sub: tenant.admin.id, tenant_id: tenant.id, role: "operator" });

    it("the caller spends its one call", async () => {
      expect((await fetch("/trpc/tenants.current", { headers: bearer(token) })).status).toBe(200);
    });

    for (const { path, type } of procedures) {
      it(`${path} answers RATE_LIMITED once the caller is over`, async () => {
        const response =
          type === "query"
            ? await fetch(`/trpc/${path}?input=${encodeURIComponent("{}")}`, { headers: bearer(token) })
            : await fetch(`/trpc/${path}`, { method: "POST", headers: { ...bearer(token), "content-type": "application/json" }, body: "{}" });
        expect(response.status, response.text.slice(0, 200)).toBe(429);
        expect(response.headers.get("retry-after")).toMatch(/^\d+$/);
      });
    }
  });
});
