import { TRPCClientError } from "@trpc/client";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { hasRole, tokenSignatureChecks, verifyToken } from "../../src/platform/auth";
import { AppError } from "../../src/platform/errors";
import { parseEnv } from "../../src/platform/env";
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

  describe("a verified token is checked once per isolate", () => {
    const workerEnv = parseEnv(env);
    const claims = { sub: crypto.randomUUID(), tenant_id: crypto.randomUUID(), role: "member" } as const;
    const codeOf = (call: Promise<unknown>) => call.then(() => "accepted", (error: unknown) => (error instanceof AppError ? error.code : String(error)));

    it("the same token again costs no signature check and yields the same caller", async () => {
      const token = await mintToken(claims);
      const before = tokenSignatureChecks();
      const first = await verifyToken(token, workerEnv);
      const again = [await verifyToken(token, workerEnv), await verifyToken(token, workerEnv)];
      expect(tokenSignatureChecks() - before).toBe(1);
      expect(again).toEqual([first, first]);
      expect(first).toEqual({ userId: claims.sub, tenantId: claims.tenant_id, role: "member" });
      // A copy each time: a caller changing its principal changes nobody else's.
      again[0]!.role = "operator";
      expect((await verifyToken(token, workerEnv)).role).toBe("member");
    });

    it("a cached token still expires: past exp + skew it is AUTH_TOKEN_EXPIRED, and stays so", async () => {
      const now = Math.floor(Date.now() / 1000);
      const token = await mintToken(claims, { issuedAt: now, expiresIn: now + 120 });
      expect(await codeOf(verifyToken(token, workerEnv, now))).toBe("accepted");
      const skew = workerEnv.JWT_CLOCK_SKEW_SECONDS;
      expect(await codeOf(verifyToken(token, workerEnv, now + 120 + skew - 1))).toBe("accepted");
      expect(await codeOf(verifyToken(token, workerEnv, now + 120 + skew + 1))).toBe("AUTH_TOKEN_EXPIRED");
      expect(await codeOf(verifyToken(token, workerEnv, now + 120 + skew + 2))).toBe("AUTH_TOKEN_EXPIRED");
    });

    it("only the exact token is trusted, and only under the settings it was verified with", async () => {
      const token = await mintToken(claims);
      await verifyToken(token, workerEnv);
      const [header, payload, signature] = token.split(".") as [string, string, string];
      const flipped = `${header}.${payload}.${signature.slice(0, -2)}${signature.endsWith("AA") ? "BA" : "AA"}`;
      expect(await codeOf(verifyToken(flipped, workerEnv))).toBe("AUTH_TOKEN_INVALID");
      // A rotated secret: the token signed with the old one no longer verifies, cache or not.
      expect(await codeOf(verifyToken(token, { ...workerEnv, JWT_SECRET: "a-rotated-secret-that-is-long-enough-0123456789" }))).toBe("AUTH_TOKEN_INVALID");
      // Nor with an audience it was not minted for.
      expect(await codeOf(verifyToken(token, { ...workerEnv, JWT_AUDIENCE: "another-audience" }))).toBe("AUTH_TOKEN_INVALID");
      expect(await codeOf(verifyToken(token, workerEnv))).toBe("accepted");
    });

    it("with a JWKS, a cached token's signature is checked again after 300 s; a token under a key the set lacks is refused and never cached", async () => {
      // The identity provider's key set, served over HTTP by the stand-in, under a name of this test's own.
      const setUrl = `${env.TEST_PROVIDERS_CONTROL_URL}/jwks/${crypto.randomUUID()}`;
      const publish = async (keys: unknown[]) => {
        const response = await fetch(setUrl.replace("/jwks/", "/_local/jwks/"), { method: "POST", body: JSON.stringify({ keys }) });
        expect(response.status).toBe(200);
      };
      const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
      const kid = crypto.randomUUID();
      await publish([{ ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }]);
      const jwksEnv = { ...workerEnv, JWT_JWKS_URL: setUrl };
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ tenant_id: claims.tenant_id, role: claims.role })
        .setProtectedHeader({ alg: "RS256", kid })
        .setSubject(claims.sub)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(privateKey);

      const before = tokenSignatureChecks();
      expect(await codeOf(verifyToken(token, jwksEnv, now))).toBe("accepted");
      expect(await codeOf(verifyToken(token, jwksEnv, now + 299))).toBe("accepted");
      expect(tokenSignatureChecks() - before).toBe(1);
      // Past the recheck the signature is verified again, against the set as jose holds it.
      expect(await codeOf(verifyToken(token, jwksEnv, now + 301))).toBe("accepted");
      expect(tokenSignatureChecks() - before).toBe(2);
      // A token under a key the set does not hold is refused, and not cached.
      const stranger = await new SignJWT({ tenant_id: claims.tenant_id, role: claims.role })
        .setProtectedHeader({ alg: "RS256", kid: crypto.randomUUID() })
        .setSubject(claims.sub)
        .setExpirationTime(now + 3600)
        .sign((await generateKeyPair("RS256")).privateKey);
      expect(await codeOf(verifyToken(stranger, jwksEnv, now))).toBe("AUTH_TOKEN_INVALID");
      expect(await codeOf(verifyToken(stranger, jwksEnv, now))).toBe("AUTH_TOKEN_INVALID");
      expect(tokenSignatureChecks() - before).toBe(4);
    });

    it("a refused token is never cached: each try is checked again", async () => {
      const forged = await mintToken(claims, { secret: "another-secret-that-is-long-enough-0123456789" });
      const before = tokenSignatureChecks();
      for (let i = 0; i < 3; i++) expect(await codeOf(verifyToken(forged, workerEnv))).toBe("AUTH_TOKEN_INVALID");
      expect(tokenSignatureChecks() - before).toBe(3);
    });
  });

  it("roles nest: operator ⊃ admin ⊃ member", () => {
    const as = (role: "member" | "admin" | "operator") => ({ userId: "u", tenantId: "t", role });
    expect(hasRole(as("operator"), "admin")).toBe(true);
    expect(hasRole(as("admin"), "operator")).toBe(false);
    expect(hasRole(as("member"), "admin")).toBe(false);
    expect(hasRole(as("member"), "member")).toBe(true);
  });
});
