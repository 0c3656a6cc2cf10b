// Users of a tenant (each row is one membership with its role): list, invite, change role, remove.
import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Services } from "../../../platform/services";
import { internalBatch, tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { apiKeys, users, userRoles } from "../schema";
import { withAccessChange } from "./access";
import { revokedKeys } from "./api-keys";
import { found } from "../../../platform/paging";

export type User = typeof users.$inferSelect;
type UserRole = (typeof userRoles)[number];

/**
 * A member's email address, for internal senders (email notifications): null when no such user is in the
 * tenant. Throws SERVICE_UNAVAILABLE (tier oltp) when OLTP cannot be reached, so the caller can defer.
 */
export async function userEmailAddress(store: TierStore, tenantId: string, userId: string): Promise<string | null> {
  const [rows] = await internalBatch(store, "system", tenantId, (db) => [
    db.select({ email: users.email }).from(users).where(and(eq(users.tenantId, tenantId), eq(users.id, userId))).limit(1),
  ]);
  return rows[0]?.email ?? null;
}

export async function getMe(store: TierStore, scope: TenantScope): Promise<User> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.select().from(users).where(and(eq(users.tenantId, scope.tenantId), eq(users.id, scope.userId))).limit(1),
  ]);
  return found(rows[0], "User");
}

/** Users ordered by email, which is unique per tenant and so serves as its own cursor. */
export async function listUsers(
  store: TierStore,
  scope: TenantScope,
  filter: { role?: UserRole; cursor?: string; limit: number },
): Promise<{ items: User[]; nextCursor: string | null }> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db
      .select()
      .from(users)
      .where(
        and(
          eq(users.tenantId, scope.tenantId),
          filter.role ? eq(users.role, filter.role) : undefined,
          filter.cursor ? gt(users.email, filter.cursor) : undefined,
        ),
      )
      .orderBy(asc(users.email))
      .limit(filter.limit + 1),
  ]);
  const items = rows.slice(0, filter.limit);
  return { items, nextCursor: rows.length > filter.limit ? (items.at(-1)?.email ?? null) : null };
}

export async function addUser(
  services: Services,
  scope: TenantScope,
  input: { email: string; name?: string; role: UserRole },
): Promise<User> {
  const id = crypto.randomUUID();
  // No email in the entry: the audit log is append-only, so it must hold nothing an erasure would have to remove.
  const audit = services.audit.action(scope, "user.add", { type: "user", id }, { role: input.role });
  const [rows] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db
      .insert(users)
      .values({ id, tenantId: scope.tenantId, email: input.email.toLowerCase(), name: input.name ?? null, role: input.role })
      .returning(),
    audit.insert(db),
  ]);
  audit.sendAfterCommit();
  return found(rows[0], "User");
}

/** The last admin cannot be demoted or removed: a tenant must keep someone who can administer it. */
const otherAdminExists = (scope: TenantScope, id: string) =>
  sql`exists (select 1 from ${users} o where o.tenant_id = ${scope.tenantId} and o.role = 'admin' and o.id <> ${id})`;

const keyColumns = {
  id: apiKeys.id,
  hash: apiKeys.hash,
  role: apiKeys.role,
  scope: apiKeys.scope,
  expiresAt: apiKeys.expiresAt,
  revokedAt: apiKeys.revokedAt,
};

/**
 * Takes effect on the user's next request (access cache). A demoted admin's own admin keys become member
 * keys in the same transaction: a key never holds more than the membership of the user who owns it.
 */
export async function setUserRole(services: Services, scope: TenantScope, id: string, role: UserRole): Promise<User> {
  const changed = sql`exists (select 1 from ${users} u where u.tenant_id = ${scope.tenantId} and u.id = ${id} and u.role = ${role})`;
  const audit = services.audit.action(scope, "user.setRole", { type: "user", id }, { role }, changed);
  const [updated, existing] = await withAccessChange(services, scope.tenantId, async () => {
    const [updatedRows, existingRows, , narrowed] = await tenantBatch(services.store("oltp"), scope, (db) => [
      db
        .update(users)
        .set({ role })
        .where(
          and(
            eq(users.tenantId, scope.tenantId),
            eq(users.id, id),
            role === "member" ? sql`(${users.role} = 'member' or ${otherAdminExists(scope, id)})` : undefined,
          ),
        )
        .returning(),
      db.select({ id: users.id }).from(users).where(and(eq(users.tenantId, scope.tenantId), eq(users.id, id))),
      audit.insert(db),
      db
        .update(apiKeys)
        .set({ role: "member" })
        .where(
          and(
            eq(apiKeys.tenantId, scope.tenantId),
            eq(apiKeys.createdBy, id),
            eq(apiKeys.owner, "user"),
            eq(apiKeys.role, "admin"),
            sql`${role} = 'member'`,
            sql`exists (select 1 from ${users} u where u.tenant_id = ${scope.tenantId} and u.id = ${id} and u.role = 'member')`,
          ),
        )
        .returning(keyColumns),
    ]);
    const user = updatedRows[0];
    return {
      result: [updatedRows, existingRows] as const,
      changes: user ? { members: { [id]: user.role as UserRole }, keys: revokedKeys(narrowed) } : {},
    };
  });
  audit.sendAfterCommit();
  if (updated[0]) return updated[0];
  if (existing[0]) throw new AppError("CONFLICT", "The tenant's last admin cannot be demoted");
  throw new AppError("NOT_FOUND", "User not found");
}

/** Refused on the user's next request; the keys the user owns (not the tenant's) are revoked with the membership. */
export async function removeUser(services: Services, scope: TenantScope, id: string): Promise<{ id: string }> {
  if (id === scope.userId) throw new AppError("BAD_REQUEST", "You cannot remove yourself; ask another admin");
  // Recorded before the delete, under the delete's own condition: after it, the row is gone either way.
  const removable = sql`exists (select 1 from ${users} u where u.tenant_id = ${scope.tenantId} and u.id = ${id} and (u.role = 'member' or ${otherAdminExists(scope, id)}))`;
  const audit = services.audit.action(scope, "user.remove", { type: "user", id }, {}, removable);
  const [deleted, existing] = await withAccessChange(services, scope.tenantId, async () => {
    const [, revoked, deletedRows, existingRows] = await tenantBatch(services.store("oltp"), scope, (db) => [
      audit.insert(db),
      db
        .update(apiKeys)
        .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
        .where(and(eq(apiKeys.tenantId, scope.tenantId), eq(apiKeys.createdBy, id), eq(apiKeys.owner, "user"), removable))
        .returning(keyColumns),
      db
        .delete(users)
        .where(
          and(eq(users.tenantId, scope.tenantId), eq(users.id, id), sql`(${users.role} = 'member' or ${otherAdminExists(scope, id)})`),
        )
        .returning({ id: users.id }),
      db.select({ id: users.id }).from(users).where(and(eq(users.tenantId, scope.tenantId), eq(users.id, id))),
    ]);
    return {
      result: [deletedRows, existingRows] as const,
      changes: deletedRows[0] ? { members: { [id]: null }, keys: revokedKeys(revoked) } : {},
    };
  });
  audit.sendAfterCommit();
  if (deleted[0]) return deleted[0];
  if (existing[0]) throw new AppError("CONFLICT", "The tenant's last admin cannot be removed");
  throw new AppError("NOT_FOUND", "User not found");
}
