import { describe, expect, it } from "vitest";
import { createTenant } from "../support/factories";
import { request } from "../support/worker";

type TrpcErrorBody = { error: { message: string; data: { code: string; httpStatus: number; requestId: string; details?: unknown } } };

describe("bad input gets a clear 4xx with a machine code, never a 500", () => {
  it("malformed JSON in a mutation body answers 400 MALFORMED_JSON", async () => {
    const tenant = await createTenant();
    const response = await request("/trpc/tenants.rename", {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.admin.token}`, "content-type": "application/json" },
      body: '{"name": "unterminated',
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as TrpcErrorBody;
    expect(body.error.data.code).toBe("MALFORMED_JSON");
  });

  it("an unknown procedure answers 404 PROCEDURE_NOT_FOUND", async () => {
    const response = await request("/trpc/tenants.doesNotExist");
    expect(response.status).toBe(404);
    const body = (await response.json()) as TrpcErrorBody;
    expect(body.error.data.code).toBe("PROCEDURE_NOT_FOUND");
  });

  it("wrong input types answer 400 VALIDATION_FAILED with the offending field", async () => {
    const tenant = await createTenant();
    for (const input of [{ name: 123 }, { name: "" }, {}, "just a string"]) {
      const response = await request("/trpc/tenants.rename", {
        method: "POST",
        headers: { authorization: `Bearer ${tenant.admin.token}`, "content-type": "application/json" },
        body: JSON.stringify(input),
      });
      expect(response.status, JSON.stringify(input)).toBe(400);
      const body = (await response.json()) as TrpcErrorBody;
      expect(body.error.data.code).toBe("VALIDATION_FAILED");
      expect(body.error.data.details).toBeInstanceOf(Array);
      expect(body.error.message).toMatch(/^Invalid input: /);
    }
    // Nothing was half-applied by the refused calls.
    const current = await request("/trpc/tenants.current", { headers: { authorization: `Bearer ${tenant.admin.token}` } });
    expect(((await current.json()) as { result: { data: { name: string } } }).result.data.name).toBe(tenant.name);
  });

  it("a query sent as POST answers 405 METHOD_NOT_SUPPORTED", async () => {
    const tenant = await createTenant();
    const response = await request("/trpc/tenants.current", {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.admin.token}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(response.status).toBe(405);
    const body = (await response.json()) as TrpcErrorBody;
    expect(body.error.data.code).toBe("METHOD_NOT_SUPPORTED");
  });

  it("a body that is not JSON answers 415 UNSUPPORTED_MEDIA_TYPE with the request id", async () => {
    const tenant = await createTenant();
    const response = await request("/trpc/tenants.rename", {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.admin.token}`, "content-type": "text/plain" },
      body: "name=x",
    });
    expect(response.status).toBe(415);
    const body = (await response.json()) as TrpcErrorBody;
    expect(body.error.data.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    expect(body.error.data.requestId).toBe(response.headers.get("x-request-id"));
  });

  it("malformed JSON in a query's input answers 400 MALFORMED_JSON without echoing parser internals", async () => {
    const tenant = await createTenant();
    const response = await request(`/trpc/tenants.rename?input=${encodeURIComponent("{bad")}`, {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.admin.token}`, "content-type": "application/json" },
      body: "{bad",
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as TrpcErrorBody;
    expect(body.error.data.code).toBe("MALFORMED_JSON");
    expect(body.error.message).not.toMatch(/position|column/);
  });

  it("an unknown route answers 404 ROUTE_NOT_FOUND with the request id", async () => {
    const response = await request("/nope", { headers: { "x-request-id": "req-from-client-42" } });
    expect(response.status).toBe(404);
    expect(response.headers.get("x-request-id")).toBe("req-from-client-42");
    const body = (await response.json()) as { error: { code: string; requestId: string } };
    expect(body.error).toMatchObject({ code: "ROUTE_NOT_FOUND", requestId: "req-from-client-42" });
  });

  it("browser preflights get CORS headers", async () => {
    const response = await request("/trpc/tenants.current", {
      method: "OPTIONS",
      headers: { origin: "https://app.example.test", "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
    });
    expect(response.status).toBeLessThan(300);
    expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example.test");
    expect(response.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
  });
});
