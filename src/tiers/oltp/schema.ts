// OLTP tier schema (Neon, OLTP_DATABASE_URL): the system of record; every tenant-scoped table under forced RLS.
import { sql } from "drizzle-orm";
import { check, index, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { tenantIsolation } from "../../core/rls";

export const tenants = pgTable(
  "tenants",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    name: text("name").notNull(),
    plan: text("plan").notNull().default("free"),
    status: text("status").notNull().default("active"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check("tenants_status_check", sql`${t.status} in ('active', 'suspended', 'closed')`),
    tenantIsolation("tenants", t.id),
  ],
);

export const users = pgTable(
  "users",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    email: text("email").notNull(),
    name: text("name"),
    role: text("role").notNull().default("member"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("users_tenant_email_key").on(t.tenantId, t.email),
    index("users_tenant_created_idx").on(t.tenantId, t.createdAt),
    check("users_role_check", sql`${t.role} in ('member', 'admin')`),
    tenantIsolation("users", t.tenantId),
  ],
);
