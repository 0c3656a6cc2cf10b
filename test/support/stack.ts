// Reads and steers the local stack from inside workerd: round-trip counters and fault injection.
import { env } from "cloudflare:workers";

export type Database = "oltp" | "notifications" | "olap";
export type Fault = "none" | "down" | "hang" | "slow";

async function control(url: string, init?: RequestInit): Promise<unknown> {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`stack control ${url} answered ${response.status}`);
  return response.json().catch(() => null);
}

export async function postgresRoundTrips(): Promise<Record<string, number>> {
  return (await control(`${env.TEST_NEON_CONTROL_URL}/_local/round-trips`)) as Record<string, number>;
}

export async function redisRoundTrips(): Promise<number> {
  return ((await control(`${env.TEST_UPSTASH_CONTROL_URL}/_local/round-trips`)) as { roundTrips: number }).roundTrips;
}

/**
 * Zeroes both counters once the earlier calls' work after their responses (waitUntil: cache refills, the telemetry
 * flush's opt-out lookup) has settled: the counts that follow are the next call's alone. Settled means unchanged over
 * 60 ms, waiting at most 2 s.
 */
export async function resetRoundTrips(): Promise<void> {
  const snapshot = async () => JSON.stringify([await postgresRoundTrips(), await redisRoundTrips()]);
  let last = await snapshot();
  for (const deadline = Date.now() + 2000; Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 60));
    const now = await snapshot();
    if (now === last) break;
    last = now;
  }
  await control(`${env.TEST_NEON_CONTROL_URL}/_local/round-trips/reset`, { method: "POST" });
  await control(`${env.TEST_UPSTASH_CONTROL_URL}/_local/round-trips/reset`, { method: "POST" });
}

export async function setDatabaseFault(database: Database, mode: Fault, latencyMs?: number): Promise<void> {
  await control(`${env.TEST_NEON_CONTROL_URL}/_local/fault`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ database, mode, latencyMs }),
  });
}

/**
 * One-shot: the database's next transaction holding a statement that contains `match` runs up to and including it,
 * then its connection dies (the server rolls the transaction back; the Worker sees a reset): a fault mid-batch.
 */
export async function failMidTransaction(database: Database, match: string): Promise<void> {
  await control(`${env.TEST_NEON_CONTROL_URL}/_local/fault/mid-transaction`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ database, match }),
  });
}

export async function setRedisFault(mode: Fault): Promise<void> {
  await control(`${env.TEST_UPSTASH_CONTROL_URL}/_local/fault`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ mode }),
  });
}

/**
 * A binding whose every method rejects: failure injection on the binding itself (Miniflare's R2
 * and Queues cannot be stopped), not a mock of the store.
 */
export function failingBinding<T extends object>(binding: T, what: string): T {
  return new Proxy(binding, {
    get: (target, property) => {
      const value = Reflect.get(target, property) as unknown;
      return typeof value === "function" ? () => Promise.reject(new Error(`${what} unreachable (injected)`)) : value;
    },
  });
}
