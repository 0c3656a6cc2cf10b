// Sending domains: the DNS records a tenant must publish (SPF, DKIM, DMARC) and their verification status.
import { and, desc, eq, sql } from "drizzle-orm";
import type { Services } from "../../../platform/services";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { domains, domainStatuses, mailboxes, type DnsRecord } from "../schema";
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
