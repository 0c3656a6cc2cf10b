// Lifecycle test helpers: an operator, SQL as the internal roles in each database, Redis, and the content write's pieces.
import { env } from "cloudflare:workers";
import { tierStore, type DbTier } from "../../src/platform/db";
import { parseEnv } from "../../src/platform/env";
import { createRedis } from "../../src/platform/redis";
import { mintToken } from "./tokens";
import { trpcClient } from "./worker";

export const appEnv = () => parseEnv(env);
/** A test's own reads: the erasure scan reads every row of every table, which takes a while once the suite has run. */
export const store = (tier: DbTier) => tierStore(appEnv(), tier, 120_000);
export const redis = () => createRedis(appEnv(), 5000);

/** Every Redis key whose name contains `text`, walking the SCAN cursor to its end (tests look for residue with it). */
export async function redisKeysMatching(text: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis().scan(cursor, { match: `*${text}*`, count: 1000 });
    cursor = String(next);
    keys.push(...batch);
  } while (cursor !== "0");
  return keys;
}

export async function operatorClient() {
  const token = await mintToken({ sub: crypto.randomUUID(), tenant_id: crypto.randomUUID(), role: "operator" });
  return trpcClient(token, { batch: false });
}

/** Raw statements in one transaction under an internal role context (and optionally a tenant). */
export async function asRole(
  tier: DbTier,
  role: "lifecycle" | "system" | "analytics",
  build: (sql: ReturnType<typeof store>["sql"]) => ReturnType<ReturnType<typeof store>["sql"]>[],
  tenantId = "",
): Promise<Record<string, unknown>[][]> {
  const sql = store(tier).sql;
  const [, ...results] = await sql.transaction([
    sql`select set_config('app.current_tenant_id', ${tenantId}, true), set_config('app.current_role', ${role}, true)`,
    ...build(sql),
  ]);
  return results as Record<string, unknown>[][];
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const scanRole: Record<DbTier, "lifecycle" | "analytics"> = { oltp: "lifecycle", notifications: "lifecycle", olap: "analytics" };

/**
 * The erasure scan: rows of every table of the database (read as the role that sees every tenant's rows) whose
 * text mentions one of the needles (addresses, ids), counted per table. Empty means no residue.
 */
export async function residue(tier: DbTier, needles: string[]): Promise<Record<string, number>> {
  const [tables = []] = await asRole(tier, scanRole[tier], (sql) => [
    sql`select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition order by 1`,
  ]);
  const found: Record<string, number> = {};
  for (const { relname } of tables) {
    const [rows = []] = await asRole(tier, scanRole[tier], (sql) => [
      sql`select count(*)::int as n from ${sql.unsafe(`"${String(relname)}"`)} t
          where exists (select 1 from jsonb_array_elements_text(${JSON.stringify(needles)}::jsonb) m where position(lower(m.value) in lower(t::text)) > 0)`,
    ]);
    if (Number(rows[0]?.n) > 0) found[String(relname)] = Number(rows[0]?.n);
  }
  return found;
}
