import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { parseEnv } from "../../src/platform/env";
import { AppError } from "../../src/platform/errors";

function envError(raw: Record<string, unknown>): AppError {
  try {
    parseEnv(raw);
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error("parseEnv accepted an invalid environment");
}

/** What production needs besides the test environment's own: a public resolver and the public origin. */
const publicParts = { DOH_RESOLVER_URL: "https://cloudflare-dns.com/dns-query", PUBLIC_BASE_URL: "https://api.example.test" };

describe("environment validation", () => {
  it("accepts the test environment and applies defaults", () => {
    const parsed = parseEnv({ ...env });
    expect(parsed.HEALTH_TIMEOUT_MS).toBeGreaterThan(0);
    expect(parsed.CORS_ORIGINS).toEqual(["*"]);
  });

  it("names a missing variable", () => {
    const { OLTP_DATABASE_URL: _, ...rest } = env;
    const error = envError({ ...rest });
    expect(error.code).toBe("ENV_INVALID");
    expect(error.message).toContain("OLTP_DATABASE_URL");
  });

  it("names a malformed variable and a missing binding, without echoing values", () => {
    const error = envError({ ...env, OLAP_DATABASE_URL: "mysql://secret-host/db", JOBS_HIGH: undefined, HEALTH_TIMEOUT_MS: "soon" });
    expect(error.message).toContain("OLAP_DATABASE_URL");
    expect(error.message).toContain("JOBS_HIGH");
    expect(error.message).toContain("HEALTH_TIMEOUT_MS");
    expect(JSON.stringify(error.details)).not.toContain("secret-host");
  });

  it("production requires JWT_ISSUER and JWT_AUDIENCE: a shared identity provider's other tokens must not pass", () => {
    const production = { ...env, ...publicParts, ENVIRONMENT: "production", EMAIL_PROVIDER_URL: "https://mail.example.test/send" };
    const error = envError({ ...production, JWT_ISSUER: undefined, JWT_AUDIENCE: undefined });
    expect(error.code).toBe("ENV_INVALID");
    expect(error.message).toContain("JWT_ISSUER");
    expect(error.message).toContain("JWT_AUDIENCE");
    expect(envError({ ...production, JWT_ISSUER: "https://idp.example.test/" }).message).toContain("JWT_AUDIENCE");
    expect(parseEnv({ ...production, JWT_ISSUER: "https://idp.example.test/", JWT_AUDIENCE: "edp" }).JWT_AUDIENCE).toBe("edp");
    expect(envError({ ...env, JWT_CLOCK_SKEW_SECONDS: "3600" }).message).toContain("JWT_CLOCK_SKEW_SECONDS");
  });

  it("production has no development stand-in: without EMAIL_PROVIDER_URL it is ENV_INVALID naming it, never a silent recorder", () => {
    const production = { ...env, ...publicParts, ENVIRONMENT: "production", JWT_ISSUER: "https://idp.example.test/", JWT_AUDIENCE: "edp" };
    const error = envError({ ...production, EMAIL_PROVIDER_URL: undefined });
    expect(error.code).toBe("ENV_INVALID");
    expect(error.message).toContain("EMAIL_PROVIDER_URL");
    expect(parseEnv({ ...production, EMAIL_PROVIDER_URL: "https://mail.example.test/send" }).EMAIL_PROVIDER_URL).toBe("https://mail.example.test/send");
    // Outside production the local stack may leave it unset (sends are recorded where a developer can see them).
    expect(parseEnv({ ...env, ENVIRONMENT: "development", EMAIL_PROVIDER_URL: undefined }).EMAIL_PROVIDER_URL).toBeUndefined();
  });

  it("production verifies domains against a public https resolver and needs its public origin for List-Unsubscribe", () => {
    const production = {
      ...env,
      ...publicParts,
      ENVIRONMENT: "production",
      JWT_ISSUER: "https://idp.example.test/",
      JWT_AUDIENCE: "edp",
      EMAIL_PROVIDER_URL: "https://mail.example.test/send",
    };
    expect(parseEnv(production).DOH_RESOLVER_URL).toBe("https://cloudflare-dns.com/dns-query");
    // Unset, the default is Cloudflare's resolver.
    expect(parseEnv({ ...production, DOH_RESOLVER_URL: undefined }).DOH_RESOLVER_URL).toBe("https://cloudflare-dns.com/dns-query");
    expect(parseEnv({ ...production, DOH_RESOLVER_URL: "https://dns.google/resolve" }).DOH_RESOLVER_URL).toBe("https://dns.google/resolve");
    // A local stand-in would verify any domain: refused in production, whatever its spelling.
    for (const local of [env.DOH_RESOLVER_URL, "https://localhost/dns-query", "https://127.0.0.1/dns-query", "https://10.0.0.5/dns-query", "https://[::1]/dns-query", "https://resolver/dns-query"]) {
      expect(envError({ ...production, DOH_RESOLVER_URL: local }).message).toContain("DOH_RESOLVER_URL");
    }
    expect(envError({ ...production, PUBLIC_BASE_URL: undefined }).message).toContain("PUBLIC_BASE_URL");
    expect(envError({ ...production, UNSUBSCRIBE_MAILTO: "not an address" }).message).toContain("UNSUBSCRIBE_MAILTO");
    expect(envError({ ...env, SUPPRESSION_HASH_SECRET: "short" }).message).toContain("SUPPRESSION_HASH_SECRET");
    // Outside production the local endpoint is what the stack sets.
    expect(parseEnv({ ...env }).DOH_RESOLVER_URL).toBe(env.DOH_RESOLVER_URL);
  });

  it("needs a way to verify tokens", () => {
    const error = envError({ ...env, JWT_SECRET: undefined });
    expect(error.message).toContain("JWT_SECRET");
    expect(envError({ ...env, JWT_SECRET: "short" }).message).toContain("JWT_SECRET");
  });

  it("a Worker with a broken environment answers a structured 500 naming the variable, not a crash", async () => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(new Request("https://edp.test/health"), { ...env, UPSTASH_REDIS_REST_URL: "not a url" }, ctx);
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(500);
    const body = (await response.json()) as { error: { code: string; message: string; requestId: string } };
    expect(body.error.code).toBe("ENV_INVALID");
    expect(body.error.message).toContain("UPSTASH_REDIS_REST_URL");
    expect(body.error.requestId).toBeTruthy();
  });
});
