// The Worker's environment (vars, secrets, bindings), validated once per isolate with zod.
import { z } from "zod";
import { AppError } from "./errors";

const postgresUrl = z
  .string({ error: "is required" })
  .refine((v) => /^postgres(ql)?:\/\/[^/]+\/[^/?]+/.test(v), "must be a postgres:// URL naming a database");

const binding = <T>(methods: string[], what: string) =>
  z.custom<T>(
    (v) => typeof v === "object" && v !== null && methods.every((m) => typeof (v as Record<string, unknown>)[m] === "function"),
    `must be ${what} binding`,
  );

const csv = z
  .string()
  .default("")
  .transform((v) => v.split(",").map((s) => s.trim()).filter(Boolean));

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const envSchema = z
  .object({
    ENVIRONMENT: z.enum(["development", "test", "production"]).default("production"),
    LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),

    JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    JWT_JWKS_URL: z.url().optional(),
    JWT_ISSUER: z.string().optional(),
    JWT_AUDIENCE: z.string().optional(),
    /** How far token times (exp, nbf, iat) may disagree with this Worker's clock. */
    JWT_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(30),

    OLTP_DATABASE_URL: postgresUrl,
    NOTIFICATIONS_DATABASE_URL: postgresUrl,
    OLAP_DATABASE_URL: postgresUrl,

    UPSTASH_REDIS_REST_URL: z.url({ error: "must be an http(s) URL" }),
    UPSTASH_REDIS_REST_TOKEN: z.string({ error: "is required" }).min(1, "is required"),

    CONTENT_BUCKET: binding<R2Bucket>(["get", "put", "head", "delete", "list"], "an R2 bucket"),
    JOBS_HIGH: binding<Queue>(["send", "sendBatch"], "a queue producer"),
    JOBS_NORMAL: binding<Queue>(["send", "sendBatch"], "a queue producer"),
    JOBS_LOW: binding<Queue>(["send", "sendBatch"], "a queue producer"),
    /** The live unread badge's Durable Object (notifications tier). Without it the badge is poll-only. */
    UNREAD_BADGE: binding<DurableObjectNamespace>(["idFromName", "get"], "a Durable Object namespace").optional(),

    /** SEND_EMAIL's transactional email API (POST JSON). Required in production; unset elsewhere, emails are recorded, not sent. */
    EMAIL_PROVIDER_URL: z.url().optional(),
    EMAIL_PROVIDER_API_KEY: z.string().min(1).optional(),
    /** Sender of email notifications (`Name <address>` or an address). Without it production refuses the email channel. */
    NOTIFICATION_EMAIL_FROM: z.string().min(3).max(320).optional(),
    /**
     * Web Push (RFC 8292 VAPID): the application server's P-256 key pair in base64url (public: the 65-byte
     * uncompressed point browsers pass to pushManager.subscribe; private: the 32-byte scalar) and its contact
     * (`mailto:` or `https:`). Without all three the push channel is refused, in every environment.
     */
    VAPID_PUBLIC_KEY: z.string().regex(/^[A-Za-z0-9_-]{87}$/, "must be a base64url P-256 public key (65 bytes)").optional(),
    VAPID_PRIVATE_KEY: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "must be a base64url P-256 private key (32 bytes)").optional(),
    VAPID_SUBJECT: z.string().regex(/^(mailto:|https:\/\/)\S+$/, "must be a mailto: or https: URI").max(320).optional(),
    /** Signs export download links; unset, a key derived from JWT_SECRET is used. */
    EXPORT_LINK_SECRET: z.string().min(32, "must be at least 32 characters").optional(),

    CORS_ORIGINS: csv,
    HEALTH_TIMEOUT_MS: positiveInt(1500),
    /** Upper bound for any one store call on a request path, so a hanging tier fails alone. */
    STORE_TIMEOUT_MS: positiveInt(5000),
    /** Most calls one tRPC batch request may carry (a larger one is BATCH_TOO_LARGE). */
    TRPC_MAX_BATCH: positiveInt(10),
    /** API calls a minute per principal (a user or API key; an anonymous caller per address), and per tenant. */
    API_RATE_LIMIT_PER_PRINCIPAL: positiveInt(600),
    API_RATE_LIMIT_PER_TENANT: positiveInt(3000),

    /** Local stack only: where the Neon driver sends HTTP queries and opens WebSockets. */
    NEON_LOCAL_FETCH_ENDPOINT: z.url().optional(),
    NEON_LOCAL_WS_PROXY: z.string().optional(),
  })
  .refine((env) => env.JWT_SECRET || env.JWT_JWKS_URL, {
    message: "one of JWT_SECRET or JWT_JWKS_URL is required",
    path: ["JWT_SECRET"],
  })
  // An identity provider shared with other apps would make their tokens valid here: production pins both.
  .refine((env) => env.ENVIRONMENT !== "production" || env.JWT_ISSUER, { message: "is required in production", path: ["JWT_ISSUER"] })
  .refine((env) => env.ENVIRONMENT !== "production" || env.JWT_AUDIENCE, { message: "is required in production", path: ["JWT_AUDIENCE"] })
  // No development stand-in in production: an unconfigured provider is a configuration error, never a silent recorder.
  .refine((env) => env.ENVIRONMENT !== "production" || env.EMAIL_PROVIDER_URL, {
    message: "is required in production",
    path: ["EMAIL_PROVIDER_URL"],
  });

export type Env = z.infer<typeof envSchema>;

const cache = new WeakMap<object, Env>();

/**
 * Validates the raw environment and names every offending variable (never its value).
 * Cached per env object: Workers hand the same object to every request of an isolate.
 */
export function parseEnv(raw: unknown): Env {
  if (typeof raw === "object" && raw !== null) {
    const hit = cache.get(raw);
    if (hit) return hit;
  }
  const result = envSchema.safeParse(raw ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((issue) => ({
      variable: issue.path.join(".") || "(env)",
      problem: issue.message,
    }));
    const names = [...new Set(problems.map((p) => p.variable))].join(", ");
    throw new AppError("ENV_INVALID", `Server misconfigured: invalid environment variable(s): ${names}`, {
      details: { problems },
    });
  }
  if (typeof raw === "object" && raw !== null) cache.set(raw, result.data);
  return result.data;
}
