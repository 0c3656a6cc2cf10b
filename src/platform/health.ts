// GET /health: one bounded check per tier, so a dead tier is reported, never waited on.
import type { Env } from "./env";
import type { Tier } from "./errors";
import { createRedis } from "./redis";
import { tierStore, type DbTier } from "./db";
import { telemetryCounters } from "./telemetry";
import { traceCounters } from "./tracing";

export type TierStatus = { status: "ok" | "down"; latencyMs: number; error?: string };
export interface HealthReport {
  status: "ok" | "degraded" | "down";
  checkedAt: string;
  tiers: Record<Tier, TierStatus>;
  /**
   * The out-of-band sinks, as this isolate has seen them: records delivered and dropped (sink down, hung, or a
   * request over its bound). They are never a tier: their outage changes nothing else in this report.
   */
  telemetry: { traces: { sent: number; dropped: number }; log: { sent: number; dropped: number }; capture: { sent: number; dropped: number } };
}

class CheckTimeout extends Error {
  override name = "CheckTimeout";
}

/** Races a check against the deadline; the loser's work is abandoned, never awaited. */
async function timed(timeoutMs: number, check: () => Promise<unknown>): Promise<TierStatus> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new CheckTimeout(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { status: "ok", latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    // The kind of failure helps operators; the text of a driver error could leak internals.
    const kind = error instanceof CheckTimeout ? "timeout" : "unreachable";
    return { status: "down", latencyMs: Math.round(performance.now() - started), error: kind };
  } finally {
    clearTimeout(timer);
  }
}

const pingDb = (env: Env, tier: DbTier, timeoutMs: number) => () => tierStore(env, tier, timeoutMs).sql`select 1`;

export async function checkHealth(env: Env, now: Date): Promise<HealthReport> {
  const t = env.HEALTH_TIMEOUT_MS;
  const [oltp, notifications, olap, redis, content] = await Promise.all([
    timed(t, pingDb(env, "oltp", t)),
    timed(t, pingDb(env, "notifications", t)),
    timed(t, pingDb(env, "olap", t)),
    timed(t, () => createRedis(env, t).ping()),
    timed(t, () => env.CONTENT_BUCKET.head("health/probe")),
  ]);
  // The jobs tier is its queues plus the ledger in OLTP: it cannot accept work while the ledger is down.
  const jobs: TierStatus =
    oltp.status === "ok"
      ? { status: "ok", latencyMs: oltp.latencyMs }
      : { status: "down", latencyMs: oltp.latencyMs, error: "ledger unavailable" };
  const tiers = { oltp, content, jobs, notifications, olap, redis };
  const up = Object.values(tiers).filter((s) => s.status === "ok").length;
  const total = Object.keys(tiers).length;
  return {
    status: up === total ? "ok" : up === 0 ? "down" : "degraded",
    checkedAt: now.toISOString(),
    tiers,
    telemetry: { traces: traceCounters(), ...telemetryCounters() },
  };
}
