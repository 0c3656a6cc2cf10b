import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { createTenant } from "../support/factories";

describe("request log", () => {
  afterEach(() => vi.restoreAllMocks());

  it("writes one JSON line per request with method, route, status, ms, tenant and request id", async () => {
    const tenant = await createTenant();
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)));
    const ctx = createExecutionContext();
    const response = await worker.fetch(
      new Request("https://edp.test/trpc/tenants.current", { headers: { authorization: `Bearer ${tenant.member.token}`, "x-request-id": "log-test-1" } }),
      { ...env, LOG_LEVEL: "info" },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(200);
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.msg === "request");
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      level: "info",
      method: "GET",
      route: "/trpc/tenants.current",
      status: 200,
      tenant: tenant.id,
      requestId: "log-test-1",
    });
    expect(typeof entries[0]?.ms).toBe("number");
  });
});
