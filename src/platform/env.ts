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

/** An https URL whose host is not a loopback or private address (nor a bare name only a local network knows). */
function isPublicHttps(value: string): boolean {
  const url = new URL(value);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (url.protocol !== "https:" || (!host.includes(".") && !host.includes(":"))) return false;
  return !/^(localhost|.*\.localhost|127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|0\.|::1$|::$|f[cd]|fe80)/i.test(host);
}

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

    /**
     * The DNS-over-HTTPS resolver (JSON API, `application/dns-json`) domain verification asks; Cloudflare's by
     * default. The local stack points it at its own endpoint, whose records tests and `npm run dev` set.
     */
    DOH_RESOLVER_URL: z.url({ protocol: /^https?$/ }).default("https://cloudflare-dns.com/dns-query"),
    /** The Worker's public origin (`https://api.example.com`): the List-Unsubscribe URL of every sent email. Required in production. */
    PUBLIC_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
    /** A mailbox that takes unsubscribe requests by email: added to List-Unsubscribe as a mailto when set. */
    UNSUBSCRIBE_MAILTO: z.email().optional(),
    /** Keys the suppression list's address hashes (HMAC-SHA-256); unset, a key derived from JWT_SECRET is used. */
    SUPPRESSION_HASH_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    /** Signs tracking links; unset, a key derived from JWT_SECRET is used. */
    TRACKING_LINK_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    /** Standard Webhooks secret (`whsec_<base64>`) of POST /v1/webhooks/standard; unset, that route is 404. */
    WEBHOOK_SIGNING_SECRET: z.string().regex(/^(whsec_)?[A-Za-z0-9+/=]{24,}$/, "must be whsec_ followed by base64").optional(),
    /** SendGrid's Signed Event Webhook verification key (base64 SubjectPublicKeyInfo); unset, POST /v1/webhooks/sendgrid is 404. */
    SENDGRID_WEBHOOK_PUBLIC_KEY: z.string().min(80).max(400).optional(),
    /** Days a closed tenant stays restorable (`tenants.reactivate`) before the closure cron erases it from every tier. */
    TENANT_CLOSE_GRACE_DAYS: z.coerce.number().int().min(0).max(365).default(30),
    /** The page that accepts an invitation; the invitation email links to it with `?token=`. Unset: this Worker's origin + /invitations/accept. */
    INVITATION_ACCEPT_URL: z.url().optional(),

    CORS_ORIGINS: csv,
    HEALTH_TIMEOUT_MS: positiveInt(1500),
    /** Upper bound for any one store call on a request path, so a hanging tier fails alone. */
    STORE_TIMEOUT_MS: positiveInt(5000),
    /** Most calls one tRPC batch request may carry (a larger one is BATCH_TOO_LARGE). */
    TRPC_MAX_BATCH: positiveInt(10),
    /** API calls a minute per principal (a user or API key; an anonymous caller per address), and per tenant. */
    API_RATE_LIMIT_PER_PRINCIPAL: positiveInt(600),
    API_RATE_LIMIT_PER_TENANT: positiveInt(3000),

    /** External logging (the out-of-band component): a JSON log drain for security, forensic and system records. */
    LOG_SINK_URL: z.url().optional(),
    LOG_SINK_TOKEN: z.string().min(1).optional(),
    /** Product events: a PostHog-compatible capture host (`/batch/` is appended) and its project API key. */
    PRODUCT_EVENTS_HOST: z.url().optional(),
    PRODUCT_EVENTS_API_KEY: z.string().min(1).optional(),
    /** Keys the hash that stands in for addresses in telemetry; unset, a key derived from JWT_SECRET is used. */
    TELEMETRY_HASH_KEY: z.string().min(32, "must be at least 32 characters").optional(),
    /** Longest wait for any telemetry sink (log drain, capture, OTLP) before its records are dropped and counted. */
    TELEMETRY_TIMEOUT_MS: positiveInt(2000),
    /** OpenTelemetry traces over OTLP/HTTP (JSON): the full `/v1/traces` URL. Unset, no span is recorded. */
    OTEL_EXPORTER_URL: z.url().optional(),
    /** Headers for the OTLP endpoint, `key=value` pairs separated by commas (the OTEL_EXPORTER_OTLP_HEADERS format). */
    OTEL_EXPORTER_HEADERS: z.string().optional(),
    /** Share of traces kept (head sampling, 0 to 1); a trace whose root span failed is always kept. */
    OTEL_SAMPLE_RATIO: z.coerce.number().min(0).max(1).default(1),

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
  // Verification against a local stand-in would mark any domain verified: production asks a real resolver.
  .refine((env) => env.ENVIRONMENT !== "production" || isPublicHttps(env.DOH_RESOLVER_URL), {
    message: "must be a public https resolver in production",
    path: ["DOH_RESOLVER_URL"],
  })
  // Bulk senders must carry a one-click List-Unsubscribe URL, which needs the public origin.
  .refine((env) => env.ENVIRONMENT !== "production" || env.PUBLIC_BASE_URL, { message: "is required in production", path: ["PUBLIC_BASE_URL"] })
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
