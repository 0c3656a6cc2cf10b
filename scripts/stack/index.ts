// The whole local stack in one call: tier databases, migrations, the Neon, Upstash and DNS-over-HTTPS endpoints, the provider stand-ins.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { dbTiers, migrateDatabases, startDatabases, type Databases, type DbTier } from "./databases";
import { type DnsEndpoint, startDnsEndpoint } from "./dns-endpoint";
import { startNeonEndpoint, type NeonEndpoint } from "./neon-endpoint";
import { type ProviderStandins, startProviderStandins } from "./provider-standins";
import { startTelemetryEndpoint, type TelemetryEndpoint } from "./telemetry-endpoint";
import { startUpstashEndpoint, type UpstashEndpoint } from "./upstash-endpoint";

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The app connects as this non-owner role; locally its password is not checked. */
export const appRoleUrl = (tier: DbTier) => `postgres://app_user:app_user@localhost:5432/${tier}`;

export interface StackOptions {
  purpose: "test" | "dev";
  dataDir?: string;
  /** On a PostgreSQL server: the databases' set name (`edp_<set>_<tier>`; default the purpose). */
  databaseSet?: string;
  jwtSecret: string;
  neonPort?: number;
  upstashPort?: number;
  env?: NodeJS.ProcessEnv;
}

export interface Stack {
  databases: Databases;
  neon: NeonEndpoint;
  upstash: UpstashEndpoint;
  /** The email provider and webhook receiver stand-ins. */
  providers: ProviderStandins;
  /** The out-of-band sinks' stand-in: traces (OTLP), product events (capture), the log drain. */
  telemetry: TelemetryEndpoint;
  /** The DNS-over-HTTPS resolver domain verification asks; records are set over HTTP. */
  dns: DnsEndpoint;
  /** Everything the Worker needs to reach this stack, as string vars. */
  workerVars: Record<string, string>;
  describe(): string;
  close(): Promise<void>;
}

/**
 * The VAPID key pair and subject of the push channel: taken from the environment when all three are set (a developer
 * whose browsers subscribed with an earlier key), else a fresh P-256 pair per stack.
 */
async function vapidKeys(env: NodeJS.ProcessEnv): Promise<Record<"VAPID_PUBLIC_KEY" | "VAPID_PRIVATE_KEY" | "VAPID_SUBJECT", string>> {
  if (env.VAPID_PUBLIC_KEY && env.VAPID_PRIVATE_KEY && env.VAPID_SUBJECT) {
    return { VAPID_PUBLIC_KEY: env.VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY: env.VAPID_PRIVATE_KEY, VAPID_SUBJECT: env.VAPID_SUBJECT };
  }
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const raw = Buffer.from(await crypto.subtle.exportKey("raw", pair.publicKey));
  const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
  return { VAPID_PUBLIC_KEY: raw.toString("base64url"), VAPID_PRIVATE_KEY: (jwk as JsonWebKey).d!, VAPID_SUBJECT: "mailto:push@localhost.test" };
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const env = options.env ?? process.env;
  const databases = await startDatabases({ purpose: options.purpose, dataDir: options.dataDir, env, ...(options.databaseSet ? { set: options.databaseSet } : {}) });
  const cleanup: Array<() => Promise<void>> = [() => databases.close()];
  try {
    await migrateDatabases(databases, path.join(projectRoot, "drizzle"));
    const neon = await startNeonEndpoint({ port: options.neonPort ?? 0, backends: databases.ownerUrls });
    cleanup.unshift(() => neon.close());
    const upstash = await startUpstashEndpoint({
      port: options.upstashPort ?? 0,
      token: "local-upstash-token",
      ...(env.REDIS_URL ? { redisUrl: env.REDIS_URL } : {}),
    });
    cleanup.unshift(() => upstash.close());
    const providers = await startProviderStandins();
    cleanup.unshift(() => providers.close());
    const telemetry = await startTelemetryEndpoint();
    cleanup.unshift(() => telemetry.close());
    const dns = await startDnsEndpoint();
    cleanup.unshift(() => dns.close());
    const vapid = await vapidKeys(env);
    const workerVars: Record<string, string> = {
      ENVIRONMENT: options.purpose === "test" ? "test" : "development",
      CORS_ORIGINS: "*",
      // Tests check the request log themselves; at info it would drown the test report.
      LOG_LEVEL: options.purpose === "test" ? "warn" : "info",
      JWT_SECRET: options.jwtSecret,
      // The fuzzer, the load run and the benchmarks drive thousands of calls a minute from a handful of principals;
      // the API limits are exercised with low settings of their own (test/worker/security/limits.test.ts).
      API_RATE_LIMIT_PER_PRINCIPAL: "1000000",
      API_RATE_LIMIT_PER_TENANT: "1000000",
      NEON_LOCAL_FETCH_ENDPOINT: neon.fetchEndpoint,
      NEON_LOCAL_WS_PROXY: neon.wsProxy,
      UPSTASH_REDIS_REST_URL: upstash.url,
      UPSTASH_REDIS_REST_TOKEN: upstash.token,
      // Domain verification asks the stack's DNS-over-HTTPS endpoint, whose records tests and `npm run dev` set.
      DOH_RESOLVER_URL: dns.resolverUrl,
      // The List-Unsubscribe URL of sent emails: the tests' request origin (npm run dev sets its own address).
      ...(options.purpose === "test" ? { PUBLIC_BASE_URL: "https://edp.test" } : {}),
      // Tests send email (SEND_EMAIL, email notifications) to the HTTP stand-in; `npm run dev` does too unless the developer names a provider (scripts/dev-vars.ts).
      ...(options.purpose === "test" ? { EMAIL_PROVIDER_URL: providers.emailUrl } : {}),
      // The out-of-band sinks go to the local stand-in. Traces are on in development; a test turns them on itself
      // (test/worker/telemetry.test.ts), so the other suites run as a deployment without an OTLP endpoint does.
      LOG_SINK_URL: telemetry.logsUrl,
      PRODUCT_EVENTS_HOST: telemetry.captureHost,
      PRODUCT_EVENTS_API_KEY: "phc_local",
      ...(options.purpose === "dev" ? { OTEL_EXPORTER_URL: telemetry.tracesUrl } : {}),
      // Web Push works in tests (against the local push service) and in development (against browsers' real ones).
      ...vapid,
      ...Object.fromEntries(dbTiers.map((tier) => [`${tier.toUpperCase()}_DATABASE_URL`, appRoleUrl(tier)])),
    };
    return {
      databases,
      neon,
      upstash,
      providers,
      telemetry,
      dns,
      workerVars,
      describe: () =>
        `Postgres: ${databases.kind === "pglite" ? "embedded PGlite" : "PostgreSQL server"} behind ${neon.fetchEndpoint}; ` +
        `Redis: ${upstash.backend === "redis" ? "Redis server" : "embedded store"} behind ${upstash.url}; DNS-over-HTTPS: ${dns.resolverUrl}`,
      async close() {
        for (const step of cleanup) await step().catch(() => undefined);
      },
    };
  } catch (error) {
    for (const step of cleanup) await step().catch(() => undefined);
    throw error;
  }
}
