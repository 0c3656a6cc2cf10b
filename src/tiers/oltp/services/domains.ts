// Sending domains: the DNS records a tenant must publish (SPF, DKIM, DMARC) and their verification status.
import { and, desc, eq, sql } from "drizzle-orm";
import { type Services, tenantSystemScope } from "../../../platform/services";
import { internalBatch, tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { type DnsResolver, DohResolver } from "../../../platform/dns";
import { AppError } from "../../../platform/errors";
import { rowsOf } from "../../../platform/rows";
import { domains, domainStatuses, mailboxes, type DnsCheck, type DnsRecord } from "../schema";
import { afterCursor, found, toPage, type Page } from "../../../platform/paging";

export type Domain = typeof domains.$inferSelect;

/** What the sending side expects to find in DNS; DKIM points at a per-tenant selector we host. */
export function expectedDnsRecords(tenantId: string, name: string): DnsRecord[] {
  const selector = `edp${tenantId.slice(0, 8)}`;
  return [
    { purpose: "spf", type: "TXT", host: name, value: "v=spf1 include:_spf.edp.email ~all" },
    { purpose: "dkim", type: "CNAME", host: `${selector}._domainkey.${name}`, value: `${selector}.dkim.edp.email` },
    { purpose: "dmarc", type: "TXT", host: `_dmarc.${name}`, value: `v=DMARC1; p=none; rua=mailto:dmarc@${name}` },
  ];
}

export async function addDomain(services: Services, scope: TenantScope, name: string): Promise<Domain> {
  const normalized = name.toLowerCase();
  const id = crypto.randomUUID();
  const audit = services.audit.action(scope, "domain.add", { type: "domain", id }, { name: normalized });
  const [rows] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db
      .insert(domains)
      .values({ id, tenantId: scope.tenantId, name: normalized, dnsRecords: expectedDnsRecords(scope.tenantId, normalized) })
      .returning(),
    audit.insert(db),
  ]);
  audit.sendAfterCommit();
  return found(rows[0], "Domain");
}

export async function listDomains(
  store: TierStore,
  scope: TenantScope,
  filter: { status?: (typeof domainStatuses)[number]; cursor?: string; limit: number },
): Promise<Page<Domain>> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db
      .select()
      .from(domains)
      .where(
        and(
          eq(domains.tenantId, scope.tenantId),
          filter.status ? eq(domains.verificationStatus, filter.status) : undefined,
          afterCursor(domains.createdAt, domains.id, filter.cursor),
        ),
      )
      .orderBy(desc(domains.createdAt), desc(domains.id))
      .limit(filter.limit + 1),
  ]);
  return toPage(rows, filter.limit);
}

export async function getDomain(store: TierStore, scope: TenantScope, id: string): Promise<Domain> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.select().from(domains).where(and(eq(domains.tenantId, scope.tenantId), eq(domains.id, id))).limit(1),
  ]);
  return found(rows[0], "Domain");
}

/** A domain that still has mailboxes is refused: removing it would silently take their history along. */
export async function removeDomain(services: Services, scope: TenantScope, id: string): Promise<{ id: string }> {
  const inUse = sql`exists (select 1 from ${mailboxes} where ${mailboxes.tenantId} = ${scope.tenantId} and ${mailboxes.domainId} = ${id})`;
  const removable = sql`exists (select 1 from ${domains} where ${domains.tenantId} = ${scope.tenantId} and ${domains.id} = ${id} and not ${inUse})`;
  const audit = services.audit.action(scope, "domain.remove", { type: "domain", id }, {}, removable);
  const [, deleted, existing] = await tenantBatch(services.store("oltp"), scope, (db) => [
    audit.insert(db),
    db
      .delete(domains)
      .where(and(eq(domains.tenantId, scope.tenantId), eq(domains.id, id), sql`not ${inUse}`))
      .returning({ id: domains.id }),
    db.select({ id: domains.id }).from(domains).where(and(eq(domains.tenantId, scope.tenantId), eq(domains.id, id))),
  ]);
  audit.sendAfterCommit();
  if (deleted[0]) return deleted[0];
  if (existing[0]) throw new AppError("CONFLICT", "The domain still has mailboxes; remove them first");
  throw new AppError("NOT_FOUND", "Domain not found");
}

/** The resolver of this environment: DOH_RESOLVER_URL (Cloudflare's by default, the local stack's endpoint in dev and tests). */
export const dnsResolverFor = (env: Services["env"]): DnsResolver => new DohResolver(env.DOH_RESOLVER_URL, env.STORE_TIMEOUT_MS);

const spfInclude = "include:_spf.edp.email";

/**
 * Whether a published value satisfies an expected record. SPF: a `v=spf1` record that includes ours (a
 * domain usually lists other senders too); DMARC: any `v=DMARC1` record (the policy is the owner's to
 * choose); DKIM: the CNAME to our selector, exactly.
 */
function satisfies(record: DnsRecord, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (record.purpose === "spf") return v.startsWith("v=spf1") && v.split(/\s+/).includes(spfInclude);
  if (record.purpose === "dmarc") return /^v=dmarc1\s*(;|$)/.test(v);
  return v === record.value.toLowerCase();
}

/** Looks up every expected record; a resolver failure throws (SERVICE_UNAVAILABLE), it never reads as "missing". */
export async function checkDnsRecords(resolver: DnsResolver, records: DnsRecord[]): Promise<DnsCheck[]> {
  return Promise.all(
    records.map(async (record) => {
      const { answers } = await resolver.lookup(record.host, record.type);
      return {
        purpose: record.purpose,
        type: record.type,
        host: record.host,
        found: answers.some((value) => satisfies(record, value)),
        seen: answers.slice(0, 5).map((value) => value.slice(0, 255)),
      };
    }),
  );
}

/**
 * Records a check's results and moves the status: all records found verifies (DOMAIN_TAKEN when another
 * tenant holds the name verified: the cross-tenant partial unique index refuses the update); a verified
 * domain missing any record is flagged `failed`, with a system event; a pending one stays pending.
 */
async function applyCheck(services: Services, scope: TenantScope, id: string, results: DnsCheck[]): Promise<Domain> {
  const now = services.clock.now().toISOString();
  const passed = results.every((r) => r.found);
  let changed: unknown;
  let rows: Domain[];
  try {
    [changed, rows] = await tenantBatch(services.store("oltp"), scope, (db) => [
      db.execute(sql`
        update ${domains} d set
          dns_results = ${JSON.stringify(results)}::jsonb,
          checked_at = ${now}::timestamptz,
          verification_status = case when ${passed} then 'verified' when p.previous = 'verified' then 'failed' else p.previous end,
          verified_at = case when ${passed} and p.previous <> 'verified' then ${now}::timestamptz else d.verified_at end
        from (select id, verification_status as previous from ${domains} where tenant_id = ${scope.tenantId} and id = ${id} for update) p
        where d.tenant_id = ${scope.tenantId} and d.id = p.id
        returning p.previous, d.verification_status as status, d.name`),
      db.select().from(domains).where(and(eq(domains.tenantId, scope.tenantId), eq(domains.id, id))),
    ]);
  } catch (error) {
    // Only the status can collide here (the name does not change): the cross-tenant verified-name index.
    if (error instanceof AppError && error.code === "CONFLICT") {
      throw new AppError("DOMAIN_TAKEN", "Another tenant has verified this domain", { tier: "oltp", cause: error });
    }
    throw error;
  }
  const domain = found(rows[0], "Domain");
  const transition = rowsOf(changed)[0] as { previous: string; status: string; name: string } | undefined;
  if (transition?.previous === "verified" && transition.status === "failed") {
    await services.systemEvents.raiseQuietly(
      {
        eventType: "domain_records_missing",
        severity: "high",
        tenantId: scope.tenantId,
        description: `Domain ${transition.name} lost its DNS records; its mailboxes stop sending until it verifies again`,
        details: { domainId: id, name: transition.name, missing: results.filter((r) => !r.found).map((r) => r.purpose) },
        dedupKey: `domain.records_missing:${id}`,
      },
      { domainId: id },
    );
  }
  return domain;
}

/** domains.verify: checks the records `domains.add` asked for, through DNS-over-HTTPS, and records what it found. */
export async function verifyDomain(services: Services, scope: TenantScope, id: string): Promise<Domain> {
  const domain = await getDomain(services.store("oltp"), scope, id);
  const results = await checkDnsRecords(dnsResolverFor(services.env), domain.dnsRecords);
  return applyCheck(services, scope, id, results);
}

/**
 * How often the cron looks again: verified (and flagged) domains, and pending ones in their first week. A run
 * checks at most `batch` domains (verified first, the longest unchecked first): each costs three DoH requests and
 * two OLTP round trips, which keeps one run well inside a Worker invocation's subrequest limit (1,000), and the
 * hourly runs cover 6 × 150 = 900 verified domains per re-check period. A larger estate needs the checks fanned
 * out as jobs.
 */
export const domainRecheck = { verifiedEveryHours: 6, pendingEveryHours: 1, pendingForDays: 7, batch: 150, parallel: 10 } as const;

/**
 * The cron's pass: due domains of every tenant (read under the system role), each checked and recorded
 * in its own tenant's context. A resolver failure or a name taken meanwhile leaves that domain as it was.
 */
export async function recheckDomains(services: Services): Promise<{ checked: number; failed: number }> {
  const now = services.clock.now();
  const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000).toISOString();
  const [due] = await internalBatch(services.store("oltp"), "system", null, (db) => [
    db.execute(sql`
      select id, tenant_id from ${domains}
      where (verification_status in ('verified', 'failed') and (checked_at is null or checked_at < ${hoursAgo(domainRecheck.verifiedEveryHours)}::timestamptz))
         or (verification_status = 'pending' and created_at > ${hoursAgo(domainRecheck.pendingForDays * 24)}::timestamptz
             and (checked_at is null or checked_at < ${hoursAgo(domainRecheck.pendingEveryHours)}::timestamptz))
      order by verification_status = 'verified' desc, checked_at nulls first, id
      limit ${domainRecheck.batch}`),
  ]);
  const list = rowsOf(due) as Array<{ id: string; tenant_id: string }>;
  const resolver = dnsResolverFor(services.env);
  let failed = 0;
  for (let i = 0; i < list.length; i += domainRecheck.parallel) {
    const outcomes = await Promise.allSettled(
      list.slice(i, i + domainRecheck.parallel).map(async ({ id, tenant_id }) => {
        const scope = tenantSystemScope(tenant_id);
        const domain = await getDomain(services.store("oltp"), scope, id);
        await applyCheck(services, scope, id, await checkDnsRecords(resolver, domain.dnsRecords));
      }),
    );
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") {
        failed++;
        services.logger.warn("domain re-check failed", { error: outcome.reason });
      }
    }
  }
  return { checked: list.length - failed, failed };
}
