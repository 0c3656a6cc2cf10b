import { TRPCClientError } from "@trpc/client";
import { describe, expect, it } from "vitest";
import { hasRole } from "../../src/platform/auth";
import { createTenant } from "../support/factories";
import { mintToken } from "../support/tokens";
import { request, trpcClient } from "../support/worker";

/** Calls tenants.current with the given Authorization header and returns status and error body. */
async function currentTenantWith(authorization?: string) {
  const response = await request("/trpc/tenants.current", {
    headers: authorization ? { authorization } : {},
  });
  const body = (await response.json()) as { error?: { message: string; data: { code: string; requestId: string } } };
  return { status: response.status, error: body.error, requestId: response.headers.get("x-request-id") };
}

describe("authentication", () => {
  it("a request without a token is refused with 401 AUTH_TOKEN_MISSING", async () => {
    const { status, error, requestId } = await currentTenantWith();
    expect(status).toBe(401);
    expect(error?.data.code).toBe("AUTH_TOKEN_MISSING");
    expect(error?.data.requestId).toBe(requestId);
  });

  it("an expired token is refused with 401 AUTH_TOKEN_EXPIRED", async () => {
    const tenant = await createTenant();
    const token = await mintToken({ sub: tenant.admin.id, tenant_id: tenant.id, role: "admin" }, {
      expiresIn: Math.floor(Date.now() / 1000) - 60,
    });
    const { status, error } = await currentTenantWith(`Bearer ${token}`);
    expect(status).toBe(401);
    expect(error?.data.code).toBe("AUTH_TOKEN_EXPIRED");
  });

  it("a token issued in the future beyond the clock skew is refused; within the skew it passes", async () => {
    const tenant = await createTenant();
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: tenant.admin.id, tenant_id: tenant.id, role: "admin" } as const;
    const future = await mintToken(claims, { issuedAt: now + 600, expiresIn: now + 3600 });
    const { status, error } = await currentTenantWith(`Bearer ${future}`);
    expect(status).toBe(401);
    expect(error?.data.code).toBe("AUTH_TOKEN_INVALID");
    const skewed = await mintToken(claims, { issuedAt: now + 10, expiresIn: now + 3600 });
    expect((await currentTenantWith(`Bearer ${skewed}`)).status).toBe(200);
    // Expired by less than the skew still passes; by more, it is expired.
    expect((await currentTenantWith(`Bearer ${await mintToken(claims, { expiresIn: now - 10 })}`)).status).toBe(200);
    expect((await currentTenantWith(`Bearer ${await mintToken(claims, { expiresIn: now - 60 })}`)).error?.data.code).toBe("AUTH_TOKEN_EXPIRED");
  });

  it("a token signed with another secret is refused with 401 AUTH_TOKEN_INVALID", async () => {
    const token = await mintToken(
      { sub: crypto.randomUUID(), tenant_id: crypto.randomUUID(), role: "admin" },
      { secret: "another-secret-that-is-long-enough-0123456789" },
    );
    const { status, error } = await currentTenantWith(`Bearer ${token}`);
    expect(status).toBe(401);
    expect(error?.data.code).toBe("AUTH_TOKEN_INVALID");
  });

  it("garbage and non-Bearer headers are refused with 401 AUTH_TOKEN_INVALID", async () => {
    for (const header of ["Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer"]) {
      const { status, error } = await currentTenantWith(header);
      expect(status, header).toBe(401);
      expect(error?.data.code, header).toBe("AUTH_TOKEN_INVALID");
    }
  });

  it("a validly signed token with claims outside the contract is refused with 401 AUTH_CLAIMS_INVALID", async () => {
    const cases = [
      { sub: "not-a-uuid", tenant_id: crypto.randomUUID(), role: "admin" },
      { sub: crypto.randomUUID(), tenant_id: crypto.randomUUID(), role: "root" },
    ];
    for (const claims of cases) {
      const token = await mintToken(claims as never);
      const { status, error } = await currentTenantWith(`Bearer ${token}`);
      expect(status, JSON.stringify(claims)).toBe(401);
      expect(error?.data.code).toBe("AUTH_CLAIMS_INVALID");
    }
  });

  it("a member calling an admin-only procedure gets 403 FORBIDDEN, an admin succeeds", async () => {
    const tenant = await createTenant();
    const asMember = trpcClient(tenant.member.token);
    const refused = await asMember.tenants.rename.mutate({ name: "Taken over" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TRPCClientError);
    const error = refused as TRPCClientError<never>;
    expect(error.data).toMatchObject({ code: "FORBIDDEN", httpStatus: 403 });

    const renamed = await trpcClient(tenant.admin.token).tenants.rename.mutate({ name: "Renamed by admin" });
    expect(renamed.name).toBe("Renamed by admin");
    expect((await asMember.tenants.current.query()).name).toBe("Renamed by admin");
  });

  it("roles nest: operator ⊃ admin ⊃ member", () => {
    const as = (role: "member" | "admin" | "operator") => ({ userId: "u", tenantId: "t", role });
    expect(hasRole(as("operator"), "admin")).toBe(true);
    expect(hasRole(as("admin"), "operator")).toBe(false);
    expect(hasRole(as("member"), "admin")).toBe(false);
    expect(hasRole(as("member"), "member")).toBe(true);
  });
});
