// Mailboxes: sending addresses on a tenant's domains, their daily limits, warmup ramp and health status.
import { and, count, desc, eq, sql } from "drizzle-orm";
import type { Services } from "../../../platform/services";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { domains, mailboxes, mailboxStatuses, tenants } from "../schema";
import { afterCursor, found, toPage, type Page } from "../../../platform/paging";

export type Mailbox = typeof mailboxes.$inferSelect;
type MailboxStatus = (typeof mailboxStatuses)[number];

export interface MailboxSettings {
  dailyLimit?: number;
  warmupEnabled?: boolean;
  warmupStart?: number;
  warmupIncrement?: number;
}

/**
 * Adds a mailbox on one of the tenant's domains, within the tenant's mailbox allowance. The insert
 * selects from the domain and the tenant row, so a foreign domain or a full allowance inserts nothing;
 * the statements after it (same transaction) say which it was.
 */
export async function addMailbox(
  services: Services,
  scope: TenantScope,
  input: MailboxSettings & { domainId: string; address: string },
): Promise<Mailbox> {
  const address = input.address.toLowerCase();
  const domainPart = address.slice(address.indexOf("@") + 1);
  const id = crypto.randomUUID();
  const audit = services.audit.action(scope, "mailbox.add", { type: "mailbox", id }, { address }, sql`exists (select 1 from ${mailboxes} where ${mailboxes.tenantId} = ${scope.tenantId} and ${mailboxes.id} = ${id})`);
  const [inserted, domain, usage, created] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db.execute(sql`
      insert into ${mailboxes} (id, tenant_id, domain_id, address, daily_limit, warmup_enabled, warmup_start, warmup_increment)
      select ${id}, d.tenant_id, d.id, ${address}, ${input.dailyLimit ?? 50}, ${input.warmupEnabled ?? true}, ${input.warmupStart ?? 5}, ${input.warmupIncrement ?? 5}
      from ${domains} d join ${tenants} t on t.id = d.tenant_id
      where d.tenant_id = ${scope.tenantId} and d.id = ${input.domainId} and d.name = ${domainPart}
        and (select count(*) from ${mailboxes} m where m.tenant_id = ${scope.tenantId}) < t.max_mailboxes`),
    db.select({ name: domains.name }).from(domains).where(and(eq(domains.tenantId, scope.tenantId), eq(domains.id, input.domainId))),
    db
      .select({ used: count(), allowed: sql<number>`(select ${tenants.maxMailboxes} from ${tenants} where ${tenants.id} = ${scope.tenantId})` })
      .from(mailboxes)
      .where(eq(mailboxes.tenantId, scope.tenantId)),
    // Read back in the same transaction: drizzle maps this row to the model, the raw INSERT's would not be.
    db.select().from(mailboxes).where(and(eq(mailboxes.tenantId, scope.tenantId), eq(mailboxes.address, address))),
    audit.insert(db),
  ]);
  audit.sendAfterCommit();
  const name = domain[0]?.name;
  if (!name) throw new AppError("NOT_FOUND", "Domain not found");
  if (name !== domainPart) {
    throw new AppError("VALIDATION_FAILED", `The address must be on the domain ${name}`, {
      details: [{ path: "address", message: `must end with @${name}` }],
    });
  }
  if (inserted.rowCount === 0) {
    throw new AppError("CONFLICT", `The tenant's mailbox allowance (${usage[0]?.allowed}) is used up`, { details: usage[0] });
  }
  return found(created[0], "Mailbox");
}

export async function listMailboxes(
  store: TierStore,
  scope: TenantScope,
  filter: { status?: MailboxStatus; domainId?: string; cursor?: string; limit: number },
): Promise<Page<Mailbox>> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db
      .select()
      .from(mailboxes)
      .where(
        and(
          eq(mailboxes.tenantId, scope.tenantId),
          filter.status ? eq(mailboxes.status, filter.status) : undefined,
          filter.domainId ? eq(mailboxes.domainId, filter.domainId) : undefined,
          afterCursor(mailboxes.createdAt, mailboxes.id, filter.cursor),
        ),
      )
      .orderBy(desc(mailboxes.createdAt), desc(mailboxes.id))
      .limit(filter.limit + 1),
  ]);
  return toPage(rows, filter.limit);
}

export async function getMailbox(store: TierStore, scope: TenantScope, id: string): Promise<Mailbox> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.select().from(mailboxes).where(and(eq(mailboxes.tenantId, scope.tenantId), eq(mailboxes.id, id))).limit(1),
  ]);
  return found(rows[0], "Mailbox");
}

/** Tenants may pause and resume; `bounce_protected` is set only by the sending side and is not theirs to clear. */
export async function updateMailbox(
  services: Services,
  scope: TenantScope,
  id: string,
  patch: MailboxSettings & { status?: Exclude<MailboxStatus, "bounce_protected"> },
): Promise<Mailbox> {
  const changeable = sql`exists (select 1 from ${mailboxes} where ${mailboxes.tenantId} = ${scope.tenantId} and ${mailboxes.id} = ${id}${patch.status ? sql` and ${mailboxes.status} <> 'bounce_protected'` : sql``})`;
  const audit = services.audit.action(scope, "mailbox.update", { type: "mailbox", id }, { ...patch }, changeable);
  const [, updated, existing] = await tenantBatch(services.store("oltp"), scope, (db) => [
    audit.insert(db),
    db
      .update(mailboxes)
      .set(patch)
      .where(
        and(
          eq(mailboxes.tenantId, scope.tenantId),
          eq(mailboxes.id, id),
          patch.status ? sql`${mailboxes.status} <> 'bounce_protected'` : undefined,
        ),
      )
      .returning(),
    db.select({ status: mailboxes.status }).from(mailboxes).where(and(eq(mailboxes.tenantId, scope.tenantId), eq(mailboxes.id, id))),
  ]);
  audit.sendAfterCommit();
  if (updated[0]) return updated[0];
  if (existing[0]) throw new AppError("CONFLICT", "A bounce-protected mailbox is released by the platform, not by a status change");
  throw new AppError("NOT_FOUND", "Mailbox not found");
}

export async function removeMailbox(services: Services, scope: TenantScope, id: string): Promise<{ id: string }> {
  const exists = sql`exists (select 1 from ${mailboxes} where ${mailboxes.tenantId} = ${scope.tenantId} and ${mailboxes.id} = ${id})`;
  const audit = services.audit.action(scope, "mailbox.remove", { type: "mailbox", id }, {}, exists);
  const [, rows] = await tenantBatch(services.store("oltp"), scope, (db) => [
    audit.insert(db),
    db.delete(mailboxes).where(and(eq(mailboxes.tenantId, scope.tenantId), eq(mailboxes.id, id))).returning({ id: mailboxes.id }),
  ]);
  audit.sendAfterCommit();
  return found(rows[0], "Mailbox");
}
