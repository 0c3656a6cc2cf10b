// Lifecycle test helpers: an operator, SQL as the internal roles in each database, Redis, and the content write's pieces.
import { env } from "cloudflare:workers";
import { tierStore, type DbTier } from "../../src/platform/db";
import { parseEnv } from "../../src/platform/env";
import { createRedis } from "../../src/platform/redis";
import { mintToken } from "./tokens";
import { trpcClient } from "./worker";

export const appEnv = () => parseEnv(env);
export const store = (tier: DbTier) => tierStore(appEnv(), tier);
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
