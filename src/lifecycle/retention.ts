// Retention you can see: every table and store with its rule and the cron task that enforces it, the docs/lifecycle.md table rendered from it, and the operator's size report.
import { sql, type SQL } from "drizzle-orm";
import { internalBatch, type DbTier, type TierStore } from "../platform/db";
import { apiRateLimitRetention } from "../platform/api-limits";
import type { Redis } from "@upstash/redis/cloudflare";
import type { RetentionRule, RetentionStore } from "../platform/retention";
import { rowsOf } from "../platform/rows";
import { content } from "../tiers/content";
import { jobs } from "../tiers/jobs";
import { notifications } from "../tiers/notifications";
import { olap } from "../tiers/olap";
import { oltp } from "../tiers/oltp";

const { retention: oltpRetention } = oltp;
const { retention: jobsRetention } = jobs;
const { retention: contentRetention } = content;
const { retention: notificationsRetention } = notifications;
const { retention: olapRetention } = olap;
const storeOrder: RetentionStore[] = ["oltp", "notifications", "olap", "r2", "redis"];

/** Completed erasure receipts are kept this long (proof of erasure), then deleted by lifecycle.pruneErasureRequests. */
export const erasureReceiptDays = 3 * 365;

/** Every rule of every tier, in store order (the docs/lifecycle.md table's order). */
export const retentionRules: RetentionRule[] = [
  ...oltpRetention,
  ...jobsRetention,
  ...contentRetention,
  { store: "oltp" as const, name: "erasure_requests", rule: `receipts ${erasureReceiptDays} days after completion`, enforcedBy: "lifecycle.pruneErasureRequests", ageColumn: "completed_at", maxAgeDays: erasureReceiptDays },
  { store: "oltp" as const, name: "tenant_closures", rule: `closure receipts (no personal data) ${erasureReceiptDays} days after completion`, enforcedBy: "lifecycle.pruneErasureRequests", ageColumn: "completed_at", maxAgeDays: erasureReceiptDays },
  ...notificationsRetention,
  ...olapRetention,
  ...apiRateLimitRetention,
].sort((a: RetentionRule, b: RetentionRule) => storeOrder.indexOf(a.store) - storeOrder.indexOf(b.store));

export const readmeTableStart = "<!-- retention-table:start -->";
export const readmeTableEnd = "<!-- retention-table:end -->";

/** The retention table of docs/lifecycle.md, rendered from `retentionRules`; a test keeps the doc equal to it. */
export function renderRetentionTable(rules = retentionRules): string {
  const lines = ["| store | table / prefix / key family | rule | enforced by |", "| --- | --- | --- | --- |"];
  for (const r of rules) lines.push(`| ${r.store} | \`${r.name}\` | ${r.rule} | ${r.enforcedBy.includes(".") && !r.enforcedBy.includes(" ") ? `\`${r.enforcedBy}\`` : r.enforcedBy} |`);
  return lines.join("\n");
}

export interface TableSize {
  store: RetentionStore;
  /** The table, R2 prefix or Redis key family, as the retention table names it. */
  table: string;
  /** Rows, R2 objects or Redis keys. */
  rows: number;
  /** The oldest row's age column, or the oldest R2 upload; Redis keeps no creation time (null). */
  oldest: string | null;
  rule: string;
  enforcedBy: string;
  /** R2 and Redis: false when the walk stopped at its bound (rows is then a lower bound) or the store did not answer. */
  complete?: boolean;
}

/** A retention table name as a pattern: `<tenant>` and `{kind}` stand for one segment, `*` for any rest. */
function namePattern(name: string, separator: "/" | ":") {
  const segment = separator === "/" ? "[^/]+" : "[^:]+";
  const glob = name.replace(/<[^>]+>|\{[^}]+\}/g, "*");
  const source = name
    .split(/(<[^>]+>|\{[^}]+\}|\*)/)
    .map((part) => (/^(<.+>|\{.+\})$/.test(part) ? segment : part === "*" ? ".*" : part.replace(/[.+?^$()|[\]\\]/g, "\\$&")))
    .join("");
  // An R2 prefix covers everything under it; a Redis family is the whole key.
  return { glob, listPrefix: glob.slice(0, glob.indexOf("*") === -1 ? undefined : glob.indexOf("*")), regex: new RegExp(`^${source}${separator === "/" ? "" : "$"}`) };
}

/** Bounds on the report's walks: R2 list pages of 1,000 objects per prefix, Redis SCAN calls of 1,000 keys per family. */
const walkBound = { r2Pages: 100, redisScans: 200 };

async function r2Sizes(bucket: Pick<R2Bucket, "list">, rules: RetentionRule[]): Promise<TableSize[]> {
  return Promise.all(
    rules.map(async (r): Promise<TableSize> => {
      const { listPrefix, regex } = namePattern(r.name, "/");
      let rows = 0;
      let oldest: number | null = null;
      let cursor: string | undefined;
      let pages = 0;
      let complete = true;
      try {
        do {
          const listed = await bucket.list({ prefix: listPrefix, ...(cursor ? { cursor } : {}) });
          for (const object of listed.objects) {
            if (!regex.test(object.key)) continue;
            rows++;
            const at = object.uploaded.getTime();
            if (oldest === null || at < oldest) oldest = at;
          }
          cursor = listed.truncated ? listed.cursor : undefined;
          if (cursor && ++pages >= walkBound.r2Pages) complete = false;
        } while (cursor && complete);
      } catch {
        complete = false;
      }
      return { store: "r2", table: r.name, rows, oldest: oldest === null ? null : new Date(oldest).toISOString(), rule: r.rule, enforcedBy: r.enforcedBy, complete };
    }),
  );
}

async function redisSizes(redis: Redis, rules: RetentionRule[]): Promise<TableSize[]> {
  return Promise.all(
    rules.map(async (r): Promise<TableSize> => {
      // A rule may name several families ("auth:{tenant}, auth:{tenant}:ctl"): each is scanned, the keys counted once.
      const keys = new Set<string>();
      let complete = true;
      try {
        for (const family of r.name.split(", ")) {
          const { glob, regex } = namePattern(family, ":");
          let cursor: string | number = "0";
          let scans = 0;
          do {
            const [next, found]: [string | number, string[]] = await redis.scan(cursor, { match: glob, count: 1000 });
            for (const key of found) if (regex.test(key)) keys.add(key);
            cursor = next;
            if (String(cursor) !== "0" && ++scans >= walkBound.redisScans) complete = false;
          } while (String(cursor) !== "0" && complete);
        }
      } catch {
        // Redis is never the source of truth: the report says it could not count, and the rest stands.
        complete = false;
      }
      return { store: "redis", table: r.name, rows: keys.size, oldest: null, rule: r.rule, enforcedBy: r.enforcedBy, complete };
    }),
  );
}

const roleOf: Record<DbTier, "lifecycle" | "analytics"> = { oltp: "lifecycle", notifications: "lifecycle", olap: "analytics" };

/** One statement per database: every table's row count and oldest timestamp, under a role that sees every tenant's rows. */
function sizesStatement(rules: RetentionRule[]): SQL {
  const parts = rules.map((r) => {
    // Epoch seconds, not text: every column type (timestamptz, timestamp, date) and every value (years past 9999,
    // BC, infinity) comes back as one number or null, so the report never has to parse Postgres's text forms.
    const oldest = r.ageColumn ? sql.raw(`extract(epoch from min("${r.ageColumn}"))::float8`) : sql.raw("null::float8");
    const oldestText = r.ageColumn ? sql.raw(`min("${r.ageColumn}")::text`) : sql.raw("null::text");
    return sql`select ${r.name}::text as table_name, count(*)::bigint as row_count, ${oldest} as oldest, ${oldestText} as oldest_text
               from ${sql.raw(`"${r.name}"`)}`;
  });
  return sql.join(parts, sql` union all `);
}

/**
 * The operator's retention report: one round trip per database, then the R2 prefixes (listed, counted, oldest upload)
 * and the Redis key families (SCAN by pattern, counted), each walk bounded (`complete: false` when it stopped short).
 */
export async function retentionReport(stores: Record<DbTier, TierStore> & { bucket: Pick<R2Bucket, "list">; redis: Redis }): Promise<TableSize[]> {
  const [tables, r2, redis] = await Promise.all([
    databaseSizes(stores),
    r2Sizes(stores.bucket, retentionRules.filter((r) => r.store === "r2")),
    redisSizes(stores.redis, retentionRules.filter((r) => r.store === "redis")),
  ]);
  return [...tables, ...r2, ...redis];
}

async function databaseSizes(stores: Record<DbTier, TierStore>): Promise<TableSize[]> {
  const databases: DbTier[] = ["oltp", "notifications", "olap"];
  const results = await Promise.all(
    databases.map(async (db) => {
      const rules = retentionRules.filter((r) => r.store === db);
      const [result] = await internalBatch(stores[db], roleOf[db], null, (d) => [d.execute(sizesStatement(rules))]);
      const byName = new Map(rowsOf(result).map((row) => [String(row.table_name), row]));
      return rules.map((r): TableSize => {
        const row = byName.get(r.name);
        const epoch = row?.oldest === null || row?.oldest === undefined ? NaN : Number(row.oldest);
        const at = new Date(epoch * 1000);
        const oldest = Number.isFinite(epoch) && !Number.isNaN(at.getTime()) ? at.toISOString() : row?.oldest_text ? String(row.oldest_text) : null;
        return { store: db, table: r.name, rows: Number(row?.row_count ?? 0), oldest, rule: r.rule, enforcedBy: r.enforcedBy };
      });
    }),
  );
  return results.flat();
}

/** Deletes erasure requests whose receipts are past retention (the pruning cron). */
export async function pruneErasureRequests(store: TierStore): Promise<number> {
  const [result] = await internalBatch(store, "lifecycle", null, (db) => [
    db.execute(sql`with d as (delete from erasure_requests where status = 'completed'
                     and completed_at < now() - make_interval(days => ${erasureReceiptDays}) returning 1),
                        c as (delete from tenant_closures where status = 'completed'
                     and completed_at < now() - make_interval(days => ${erasureReceiptDays}) returning 1)
                   select (select count(*) from d)::int + (select count(*) from c)::int as n`),
  ]);
  return Number(rowsOf(result)[0]?.n ?? 0);
}
