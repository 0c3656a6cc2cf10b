// The cross-tier consistency checker: finds what the tiers disagree on, repairs what is safe to repair, raises the rest as admin system events.
import type { Redis } from "@upstash/redis/cloudflare";
import { sql } from "drizzle-orm";
import { internalBatch, type TierStore } from "../platform/db";
import { jobRuntimeConfig } from "../platform/jobs/config";
import { messageForJob } from "../platform/jobs/enqueue";
import { rowsOfJobs } from "../platform/jobs/rows";
import type { Logger } from "../platform/logger";
import { groupBy, rowsOf } from "../platform/rows";
import type { Services } from "../platform/services";
import type { ContentBucket } from "../tiers/content";
import { invalidateUnread, notificationsConfig } from "../tiers/notifications";
import { reconcileCampaignTotals } from "../tiers/olap";

export const findingKinds = ["missingContent", "orphanBlobs", "refCounts", "unreadCache", "olapTotals", "stuckJobs"] as const;
export type FindingKind = (typeof findingKinds)[number];

export interface KindReport {
  found: number;
  repaired: number;
  needsAttention: number;
}

export interface ConsistencyReport {
  checkedAt: string;
  /** The tenant checked, or null for the whole platform (the daily cron). */
  tenantId: string | null;
  kinds: Record<FindingKind, KindReport>;
}

export interface ConsistencyOptions {
  tenantId: string | null;
  /** An R2 object no catalog row names is reclaimed only once older than this (a streamed upload waits for its email). */
  orphanGraceSeconds: number;
}

export const consistencyDefaults: Omit<ConsistencyOptions, "tenantId"> = {
  orphanGraceSeconds: 24 * 3600,
};

export interface ConsistencyDeps {
  oltp: TierStore;
  notifications: TierStore;
  olap: TierStore;
  bucket: ContentBucket & Pick<R2Bucket, "list">;
  redis: Redis;
  logger: Logger;
  services: Services;
}

/** A finding that needs a person: one open system event per tenant and kind, whose occurrences grow while it persists. */
interface Attention {
  kind: FindingKind;
  tenantId: string | null;
  description: string;
  sample: unknown[];
  count: number;
}

const empty = (): KindReport => ({ found: 0, repaired: 0, needsAttention: 0 });
const objectKey = /^tenants\/([0-9a-f-]{36})\/objects\/([0-9a-f]{64})$/;

/**
 * (a) Content-tier emails (`emails/<id>` keys) with no catalog entry, a part whose object has no
 * catalog row, or an object R2 no longer holds. Mail cannot be rebuilt: needs attention.
 */
async function missingContent(deps: ConsistencyDeps, options: ConsistencyOptions, attention: Attention[]): Promise<KindReport> {
  const tenant = options.tenantId ? sql`and e.tenant_id = ${options.tenantId}` : sql``;
  const [result] = await internalBatch(deps.oltp, "lifecycle", null, (db) => [
    db.execute(sql`
      select e.tenant_id, e.id as email_id, p.hash, o.storage_key,
             (c.email_id is null) as no_entry, (p.hash is not null and o.hash is null) as no_object
      from emails e
      left join email_contents c on c.tenant_id = e.tenant_id and c.email_id = e.id
      left join email_content_parts p on p.tenant_id = e.tenant_id and p.email_id = e.id
      left join content_objects o on o.tenant_id = p.tenant_id and o.hash = p.hash
      where e.content_storage_key = 'emails/' || e.id::text ${tenant}
      order by e.created_at desc
      limit 20000`),
  ]);
  const broken = new Map<string, { tenantId: string; emailId: string }>();
  const keyUsers = new Map<string, Array<{ tenantId: string; emailId: string }>>();
  for (const row of rowsOf(result)) {
    const ref = { tenantId: String(row.tenant_id), emailId: String(row.email_id) };
    if (row.no_entry || row.no_object) broken.set(ref.emailId, ref);
    else if (row.storage_key) keyUsers.set(String(row.storage_key), [...(keyUsers.get(String(row.storage_key)) ?? []), ref]);
  }
  // R2's answer for every catalogued object these emails use: one head per distinct object.
  const keys = [...keyUsers.keys()];
  for (let i = 0; i < keys.length; i += 50) {
    const heads = await Promise.all(keys.slice(i, i + 50).map(async (key) => [key, await deps.bucket.head(key)] as const));
    for (const [key, head] of heads) if (!head) for (const ref of keyUsers.get(key) ?? []) broken.set(ref.emailId, ref);
  }
  const report = empty();
  report.found = report.needsAttention = broken.size;
  for (const [tenantId, refs] of groupBy([...broken.values()], (r) => r.tenantId)) {
    attention.push({ kind: "missingContent", tenantId, count: refs.length, sample: refs.slice(0, 20).map((r) => r.emailId), description: "Emails whose content is missing from the content tier" });
  }
  return report;
}

/**
 * (b) R2 objects under a tenant's content prefix that no catalog row names, older than the grace
 * period: left by a failed email write whose cleanup could not run, or a streamed upload no email
 * used. Claimed with a purged tombstone in a statement that re-checks the catalog (a write that found
 * the blob before the claim then fails its content_assert_live and starts over), then deleted.
 */
async function orphanBlobs(deps: ConsistencyDeps, options: ConsistencyOptions): Promise<KindReport> {
  const report = empty();
  const prefix = options.tenantId ? `tenants/${options.tenantId}/objects/` : "tenants/";
  const cutoff = deps.services.clock.now().getTime() - options.orphanGraceSeconds * 1000;
  let cursor: string | undefined;
  do {
    const page = await deps.bucket.list({ prefix, limit: 1000, ...(cursor ? { cursor } : {}) });
    cursor = page.truncated ? page.cursor : undefined;
    const candidates = page.objects
      .filter((o) => o.uploaded.getTime() <= cutoff)
      .flatMap((o) => {
        const match = objectKey.exec(o.key);
        return match ? [{ tenant_id: match[1]!, hash: match[2]!, storage_key: o.key }] : [];
      });
    if (candidates.length === 0) continue;
    const [found, claimed] = await internalBatch(deps.oltp, "lifecycle", null, (db) => [
      db.execute(sql`
        select count(*)::int as n from jsonb_to_recordset(${JSON.stringify(candidates)}::jsonb) as k(tenant_id uuid, hash text, storage_key text)
        where not exists (select 1 from content_objects o where o.tenant_id = k.tenant_id and o.hash = k.hash)
          and not exists (select 1 from content_tombstones t where t.tenant_id = k.tenant_id and t.hash = k.hash and t.purged_at is null)`),
      db.execute(sql`
        insert into content_tombstones (tenant_id, hash, storage_key, purged_at)
        select k.tenant_id, k.hash, k.storage_key, now()
        from jsonb_to_recordset(${JSON.stringify(candidates)}::jsonb) as k(tenant_id uuid, hash text, storage_key text)
        where not exists (select 1 from content_objects o where o.tenant_id = k.tenant_id and o.hash = k.hash)
        on conflict (tenant_id, hash) do update set purged_at = now()
          where content_tombstones.purged_at is not null
        returning storage_key`),
    ]);
    const keys = rowsOf(claimed).map((r) => String(r.storage_key));
    report.found += Number(rowsOf(found)[0]?.n ?? 0);
    if (keys.length > 0) await deps.bucket.delete(keys);
    report.repaired += keys.length;
  } while (cursor);
  report.needsAttention = Math.max(0, report.found - report.repaired);
  return report;
}

/**
 * (c) Reference counts that disagree with the references: parts using the object, plus parts whose
 * object was compressed against it (templates). Rebuilt in one statement; a row a concurrent write
 * changed since the count was read is left for the next run (the update re-checks the count it saw).
 */
async function refCounts(deps: ConsistencyDeps, options: ConsistencyOptions): Promise<KindReport> {
  const tenant = options.tenantId ? sql`and o.tenant_id = ${options.tenantId}` : sql``;
  const [result] = await internalBatch(deps.oltp, "lifecycle", null, (db) => [
    db.execute(sql`
      with expected as (
        select o.tenant_id, o.hash, o.ref_count as seen,
               (select count(*) from email_content_parts p where p.tenant_id = o.tenant_id and p.hash = o.hash)
             + (select count(*) from email_content_parts p join content_objects d on d.tenant_id = p.tenant_id and d.hash = p.hash
                where p.tenant_id = o.tenant_id and d.dictionary_hash = o.hash) as actual
        from content_objects o where true ${tenant}
      ), wrong as (select * from expected where seen <> actual),
      fixed as (
        update content_objects o set ref_count = wrong.actual
        from wrong where o.tenant_id = wrong.tenant_id and o.hash = wrong.hash and o.ref_count = wrong.seen
        returning o.hash)
      select (select count(*)::int from wrong) as found, (select count(*)::int from fixed) as repaired`),
  ]);
  const row = rowsOf(result)[0] ?? {};
  const found = Number(row.found ?? 0);
  const repaired = Number(row.repaired ?? 0);
  return { found, repaired, needsAttention: found - repaired };
}

interface CachedCount {
  tenantId: string;
  userId: string;
  n: number;
}

/** The cached counts Redis would serve now (tokens current, not expired), per tenant hash. */
async function servedCounts(redis: Redis, tenantId: string | null, now: number): Promise<CachedCount[]> {
  const keys: string[] = [];
  if (tenantId) keys.push(`notif:unread:${tenantId}`);
  else {
    let cursor = "0";
    do {
      const [next, batch] = await redis.scan(cursor, { match: "notif:unread:*", count: 500 });
      cursor = String(next);
      keys.push(...batch);
    } while (cursor !== "0");
  }
  const counts: CachedCount[] = [];
  for (const key of keys) {
    const fields = (await redis.hgetall<Record<string, unknown>>(key)) ?? {};
    const tenant = key.slice("notif:unread:".length);
    for (const [field, raw] of Object.entries(fields)) {
      if (!field.startsWith("c:")) continue;
      const userId = field.slice(2);
      const value = (typeof raw === "string" ? JSON.parse(raw) : raw) as { n?: number; until?: number; tv?: string | null; uv?: string | null };
      const tv = fields.tenant === undefined || fields.tenant === null ? null : String(fields.tenant);
      const uvRaw = fields[`v:${userId}`];
      const uv = uvRaw === undefined || uvRaw === null ? null : String(uvRaw);
      if (typeof value?.n !== "number" || typeof value.until !== "number" || value.until <= now) continue;
      if ((value.tv ?? null) !== tv || (value.uv ?? null) !== uv) continue;
      counts.push({ tenantId: tenant, userId, n: value.n });
    }
  }
  return counts;
}

/**
 * (d) Cached unread counts Redis would serve that disagree with Postgres: the user's cache token is
 * changed, so the next read refills from Postgres. Always safe: invalidating costs one miss.
 */
async function unreadCache(deps: ConsistencyDeps, options: ConsistencyOptions): Promise<KindReport> {
  const report = empty();
  const cached = await servedCounts(deps.redis, options.tenantId, deps.services.clock.now().getTime());
  for (const [tenantId, entries] of groupBy(cached, (c) => c.tenantId)) {
    const users = entries.map((e) => e.userId);
    // Receipts are visible only inside their tenant's context, so one statement per tenant.
    const [result] = await internalBatch(deps.notifications, "system", tenantId, (db) => [
      db.execute(sql`
        select u.user_id, (
          select count(*)::int from notifications n
          where n.tenant_id = ${tenantId} and n.is_read = false and n.deleted_at is null and (n.expires_at is null or n.expires_at > now())
            and (n.user_id = u.user_id or (n.user_id is null and not exists (
                  select 1 from notification_receipts r where r.notification_id = n.id and r.user_id = u.user_id
                    and (r.read_at is not null or r.deleted_at is not null))))) as unread
        from jsonb_array_elements_text(${JSON.stringify(users)}::jsonb) as j(value), lateral (select j.value::uuid as user_id) u`),
    ]);
    const actual = new Map(rowsOf(result).map((r) => [String(r.user_id), Number(r.unread)]));
    const wrong = entries.filter((e) => actual.get(e.userId) !== e.n);
    report.found += wrong.length;
    if (wrong.length > 0) {
      await invalidateUnread(deps.redis, notificationsConfig, wrong.map((e) => ({ tenantId, userId: e.userId })));
      report.repaired += wrong.length;
    }
  }
  return report;
}

/**
 * (e) OLAP totals against their source facts, sampled by the OLAP tier's own reconciliation (recent
 * days of recently active campaigns). Raised, not rewritten here: the ETL owns the aggregates and an
 * operator rebuild (analytics.rebuild) recomputes them.
 */
async function olapTotals(deps: ConsistencyDeps, options: ConsistencyOptions, attention: Attention[]): Promise<KindReport> {
  const now = deps.services.clock.now();
  const result = await reconcileCampaignTotals(deps.oltp, deps.olap, options.tenantId ? { tenantId: options.tenantId, now } : { now });
  const campaigns = new Map(result.mismatches.map((m) => [`${m.tenantId}|${m.campaignId}`, m]));
  for (const [tenantId, list] of groupBy([...campaigns.values()], (m) => m.tenantId)) {
    attention.push({ kind: "olapTotals", tenantId, count: list.length, sample: list.slice(0, 10).map((m) => ({ campaignId: m.campaignId, type: m.type, olap: m.olap, source: m.source })), description: "Campaign analytics disagree with the email events they were built from" });
  }
  return { found: campaigns.size, repaired: 0, needsAttention: campaigns.size };
}

/** (f) Ledger jobs running past their lease (their worker died): made pending and sent again. */
async function stuckJobs(deps: ConsistencyDeps, options: ConsistencyOptions): Promise<KindReport> {
  const tenant = options.tenantId ? sql`and tenant_id = ${options.tenantId}` : sql``;
  const [result] = await internalBatch(deps.oltp, "system", null, (db) => [
    db.execute(sql`
      update jobs set status = 'pending', scheduled_at = now(), updated_at = now(),
             last_error = coalesce(last_error, 'lease expired while running; re-queued by the consistency check')
      where id in (select id from jobs where status = 'running' and started_at < now() - make_interval(secs => ${jobRuntimeConfig.leaseSeconds}) ${tenant}
                   limit 1000 for update skip locked)
      returning *`),
  ]);
  const jobs = rowsOfJobs(result);
  await deps.services.jobs.send(jobs.map((job) => messageForJob(job, deps.services.clock)));
  return { found: jobs.length, repaired: jobs.length, needsAttention: 0 };
}

/**
 * Runs every check; one failing check (its tier down) is logged and reported as needing attention,
 * the others still run. Findings that were not repaired become one de-duplicated system event each.
 */
export async function checkConsistency(deps: ConsistencyDeps, options: ConsistencyOptions): Promise<ConsistencyReport> {
  const attention: Attention[] = [];
  const checks: Record<FindingKind, () => Promise<KindReport>> = {
    missingContent: () => missingContent(deps, options, attention),
    orphanBlobs: () => orphanBlobs(deps, options),
    refCounts: () => refCounts(deps, options),
    unreadCache: () => unreadCache(deps, options),
    olapTotals: () => olapTotals(deps, options, attention),
    stuckJobs: () => stuckJobs(deps, options),
  };
  const kinds = {} as Record<FindingKind, KindReport>;
  for (const kind of findingKinds) {
    try {
      kinds[kind] = await checks[kind]();
    } catch (error) {
      deps.logger.error("consistency check failed", { kind, error });
      kinds[kind] = { found: 0, repaired: 0, needsAttention: 1 };
      attention.push({ kind, tenantId: options.tenantId, count: 1, sample: [], description: `The ${kind} consistency check could not run` });
    }
  }
  for (const item of attention) {
    await deps.services.systemEvents.raise({
      eventType: "lifecycle.inconsistency",
      severity: item.kind === "missingContent" ? "critical" : "high",
      tenantId: item.tenantId,
      description: item.description,
      details: { kind: item.kind, count: item.count, sample: item.sample },
      dedupKey: `lifecycle.consistency:${item.kind}`,
    }).catch((error: unknown) => deps.logger.error("consistency finding not raised", { kind: item.kind, error }));
  }
  return { checkedAt: deps.services.clock.now().toISOString(), tenantId: options.tenantId, kinds };
}
