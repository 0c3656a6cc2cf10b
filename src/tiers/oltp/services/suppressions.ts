// The tenant's suppression list: addresses that receive nothing, kept apart from leads so an opt-out outlives its lead.
import { and, desc, eq, sql, type SQL } from "drizzle-orm";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import type { Env } from "../../../platform/env";
import { AppError } from "../../../platform/errors";
import { afterCursor, toPage, type Page } from "../../../platform/paging";
import type { Services } from "../../../platform/services";
import { linkSigner } from "../../../platform/signed-links";
import { suppressions, type suppressionReasons } from "../schema";

export type SuppressionReason = (typeof suppressionReasons)[number];
/** What callers see: the keyed hash stays inside (it would let anyone holding the key test addresses). */
export type Suppression = Omit<typeof suppressions.$inferSelect, "addressHash" | "tenantId">;
const publicSuppression = ({ addressHash: _hash, tenantId: _tenant, ...rest }: typeof suppressions.$inferSelect): Suppression => rest;

/** Addresses compare lower-cased and trimmed, as leads store them. */
export const normaliseAddress = (address: string) => address.trim().toLowerCase();

/** The keyed hash (HMAC-SHA-256, base64url) the list is keyed by: SUPPRESSION_HASH_SECRET, or JWT_SECRET under this label. */
export type AddressHasher = (address: string) => Promise<string>;
export function addressHasher(env: Pick<Env, "SUPPRESSION_HASH_SECRET" | "JWT_SECRET">): AddressHasher {
  const signer = linkSigner(
    "suppression-address",
    { dedicated: env.SUPPRESSION_HASH_SECRET, shared: env.JWT_SECRET },
    new AppError("INTERNAL", "The suppression list needs SUPPRESSION_HASH_SECRET or JWT_SECRET to be configured"),
  );
  return (address) => signer.sign(normaliseAddress(address));
}

/** SQL: the lead address `address` (a column of a lead row) is on tenant `tenant`'s list. */
export const isSuppressed = (tenant: SQL, address: SQL): SQL =>
  sql`exists (select 1 from suppressions s where s.tenant_id = ${tenant} and s.address = ${address})`;

/**
 * A statement for the batch that writes leads: an erased entry whose hash matches one of the written
 * addresses gets its address back, so every check by address (enrolment, sequencer, SEND_EMAIL) sees
 * the new lead as suppressed. The tenant holds the address again in the lead; erasing it clears both.
 */
export async function reattachStatement(hasher: AddressHasher, scope: TenantScope, addresses: string[]) {
  const pairs = await Promise.all([...new Set(addresses.map(normaliseAddress))].map(async (address) => ({ hash: await hasher(address), address })));
  return (db: NeonHttpDatabase) =>
    db.execute(sql`
      update suppressions s set address = r.address
      from jsonb_to_recordset(${JSON.stringify(pairs)}::jsonb) as r(hash text, address text)
      where s.tenant_id = ${scope.tenantId} and s.address_hash = r.hash and s.address is null`);
}

/** Inserts entries (the first reason stays); an erased entry added again takes its address back. */
export async function suppressionInsert(hasher: AddressHasher, scope: TenantScope, entries: Array<{ address: string; reason: SuppressionReason }>) {
  const rows = await Promise.all(
    entries.map(async (e) => ({ tenantId: scope.tenantId, address: normaliseAddress(e.address), addressHash: await hasher(e.address), reason: e.reason })),
  );
  return (db: NeonHttpDatabase) =>
    db
      .insert(suppressions)
      .values(rows)
      .onConflictDoUpdate({ target: [suppressions.tenantId, suppressions.addressHash], set: { address: sql`coalesce(${suppressions.address}, excluded.address)` } })
      .returning();
}

/** An admin adds one address; the same address added again answers the existing entry. */
export async function addSuppression(services: Services, scope: TenantScope, input: { address: string; reason: SuppressionReason }): Promise<Suppression> {
  const insert = await suppressionInsert(addressHasher(services.env), scope, [input]);
  const audit = services.audit.action(scope, "suppression.add", { type: "suppression" }, { reason: input.reason });
  const [rows] = await tenantBatch(services.store("oltp"), scope, (db) => [insert(db), audit.insert(db)]);
  audit.sendAfterCommit();
  return publicSuppression(rows[0]!);
}

/** Removes an address (by its hash, so an erased entry can be removed by someone who knows the address). */
export async function removeSuppression(services: Services, scope: TenantScope, address: string): Promise<{ removed: boolean }> {
  const hash = await addressHasher(services.env)(address);
  const audit = services.audit.action(scope, "suppression.remove", { type: "suppression" }, {});
  const [rows] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db
      .delete(suppressions)
      .where(and(eq(suppressions.tenantId, scope.tenantId), eq(suppressions.addressHash, hash)))
      .returning({ hash: suppressions.addressHash }),
    audit.insert(db),
  ]);
  audit.sendAfterCommit();
  return { removed: rows.length > 0 };
}

export async function listSuppressions(
  store: TierStore,
  scope: TenantScope,
  filter: { reason?: SuppressionReason; cursor?: string; limit: number },
): Promise<Page<Suppression>> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db
      .select()
      .from(suppressions)
      .where(
        and(
          eq(suppressions.tenantId, scope.tenantId),
          filter.reason ? eq(suppressions.reason, filter.reason) : undefined,
          afterCursor(suppressions.createdAt, suppressions.id, filter.cursor),
        ),
      )
      .orderBy(desc(suppressions.createdAt), desc(suppressions.id))
      .limit(filter.limit + 1),
  ]);
  const page = toPage(rows, filter.limit);
  return { ...page, items: page.items.map(publicSuppression) };
}
