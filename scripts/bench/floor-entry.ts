// The bench build's Worker entry: the production Worker unchanged, plus floor routes under /__bench/ that make a call's
// store round trips with the same drivers and clients and nothing else. Only `npm run bench:api` bundles this file;
// `npm run build` bundles src/index.ts and checks its output has no /__bench/ route (scripts/check-bundle.ts).
import worker from "../../src/index";
import { tierStore, type DbTier } from "../../src/platform/db";
import { parseEnv } from "../../src/platform/env";
import { createLogger } from "../../src/platform/logger";
import { createRedis, redisBatch } from "../../src/platform/redis";
import { notificationsConfig } from "../../src/tiers/notifications/config";
import { signalBadges } from "../../src/tiers/notifications/services/live";
import { invalidateUnread, type CacheChange } from "../../src/tiers/notifications/services/unread-cache";

export { UnreadBadge } from "../../src/index";

/** One floor call: the same Redis reads in one request, the same transaction, the same work after the response. */
export interface FloorSpec {
  /** HMGETs sent together in one pipeline request, as the call's authorization (and prefetch) sends them. */
  hmget?: Array<[string, ...string[]]>;
  tier?: DbTier;
  /** The statements of the call's one transaction, as the driver sends them. */
  sql?: Array<{ text: string; values: unknown[] }>;
  /** The cache invalidation and badge signal a write does after its response. */
  changed?: CacheChange[];
}

/** Floors by name, each a list of specs the load rotates through (`/__bench/floor/<name>/<i>`). Per isolate. */
const floors = new Map<string, FloorSpec[]>();
const logger = createLogger("warn");

async function runFloor(spec: FloorSpec, rawEnv: object, ctx: ExecutionContext): Promise<Response> {
  const env = parseEnv(rawEnv);
  if (spec.hmget) {
    const batch = redisBatch(createRedis(env));
    const reads = spec.hmget.map(([key, ...fields]) => batch.hmget(key, ...fields));
    batch.send();
    await Promise.all(reads);
  }
  if (spec.sql && spec.tier) {
    const { sql } = tierStore(env, spec.tier);
    await sql.transaction(spec.sql.map((q) => sql.query(q.text, q.values)));
  }
  if (spec.changed) {
    ctx.waitUntil(signalBadges(env, logger, spec.changed));
    ctx.waitUntil(invalidateUnread(createRedis(env), notificationsConfig, spec.changed).catch(() => undefined));
  }
  return new Response("{}", { headers: { "content-type": "application/json" } });
}

async function bench(request: Request, rawEnv: object, ctx: ExecutionContext, path: string): Promise<Response> {
  if (path === "/__bench/ping") return new Response("{}", { headers: { "content-type": "application/json" } });
  const define = /^\/__bench\/floors\/([\w-]+)$/.exec(path);
  if (define && request.method === "PUT") {
    floors.set(define[1]!, (await request.json()) as FloorSpec[]);
    return new Response(null, { status: 204 });
  }
  const floor = /^\/__bench\/floor\/([\w-]+)\/(\d+)$/.exec(path);
  const specs = floor ? floors.get(floor[1]!) : undefined;
  if (!floor || !specs?.length) return new Response("no such floor", { status: 404 });
  return runFloor(specs[Number(floor[2]) % specs.length]!, rawEnv, ctx);
}

export default {
  ...worker,
  fetch(request: Request, env: object, ctx: ExecutionContext) {
    // A string search, not a URL parse: every production call passes here too, so the wrapper costs next to nothing.
    const at = request.url.indexOf("/__bench/");
    if (at < 0) return worker.fetch!(request as Parameters<NonNullable<typeof worker.fetch>>[0], env, ctx);
    const end = request.url.indexOf("?", at);
    return bench(request, env, ctx, request.url.slice(at, end < 0 ? undefined : end));
  },
};
