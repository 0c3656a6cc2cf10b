// The whole local stack in one call: tier databases, migrations, the Neon and Upstash endpoints.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { dbTiers, migrateDatabases, startDatabases, type Databases, type DbTier } from "./databases";
import { startNeonEndpoint, type NeonEndpoint } from "./neon-endpoint";
import { type ProviderStandins, startProviderStandins } from "./provider-standins";
import { startUpstashEndpoint, type UpstashEndpoint } from "./upstash-endpoint";

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The app connects as this non-owner role; locally its password is not checked. */
export const appRoleUrl = (tier: DbTier) => `postgres://app_user:app_user@localhost:5432/${tier}`;

export interface StackOptions {
  purpose: "test" | "dev";
  dataDir?: string;
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
  const databases = await startDatabases({ purpose: options.purpose, dataDir: options.dataDir, env });
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
      // Tests send email (SEND_EMAIL, email notifications) to the HTTP stand-in; development keeps the in-isolate recorder.
      ...(options.purpose === "test" ? { EMAIL_PROVIDER_URL: providers.emailUrl } : {}),
      // Web Push works in tests (against the local push service) and in development (against browsers' real ones).
      ...vapid,
      ...Object.fromEntries(dbTiers.map((tier) => [`${tier.toUpperCase()}_DATABASE_URL`, appRoleUrl(tier)])),
    };
    return {
      databases,
      neon,
      upstash,
      providers,
      workerVars,
      describe: () =>
        `Postgres: ${databases.kind === "pglite" ? "embedded PGlite" : "PostgreSQL server"} behind ${neon.fetchEndpoint}; ` +
        `Redis: ${upstash.backend === "redis" ? "Redis server" : "embedded store"} behind ${upstash.url}`,
      async close() {
        for (const step of cleanup) await step().catch(() => undefined);
      },
    };
  } catch (error) {
    for (const step of cleanup) await step().catch(() => undefined);
    throw error;
  }
}
