import { afterEach, describe, expect, it } from "vitest";
import type { HealthReport } from "../../src/platform/health";
import { setDatabaseFault, setRedisFault } from "../support/stack";
import { request } from "../support/worker";

const tiers = ["oltp", "content", "jobs", "notifications", "olap", "redis"] as const;

async function health(): Promise<{ status: number; report: HealthReport; ms: number }> {
  const started = Date.now();
  const response = await request("/health");
  return { status: response.status, report: (await response.json()) as HealthReport, ms: Date.now() - started };
}

describe("GET /health", () => {
  afterEach(async () => {
    await Promise.all([setDatabaseFault("olap", "none"), setDatabaseFault("oltp", "none"), setRedisFault("none")]);
  });

  it("reports every tier ok with a latency", async () => {
    const { status, report } = await health();
    expect(status).toBe(200);
    expect(report.status).toBe("ok");
    for (const tier of tiers) {
      expect(report.tiers[tier].status, tier).toBe("ok");
      expect(report.tiers[tier].latencyMs).toBeGreaterThanOrEqual(0);
    }
  });

  it("a database that refuses connections is down while the service is degraded", async () => {
    await setDatabaseFault("olap", "down");
    const { status, report } = await health();
    expect(status).toBe(200);
    expect(report.status).toBe("degraded");
    expect(report.tiers.olap.status).toBe("down");
    for (const tier of tiers.filter((t) => t !== "olap")) expect(report.tiers[tier].status, tier).toBe("ok");
  });

  it("a hanging database is reported down within the health timeout, not waited on", async () => {
    await setDatabaseFault("oltp", "hang");
    const { report, ms } = await health();
    expect(report.tiers.oltp).toMatchObject({ status: "down", error: "timeout" });
    // The jobs ledger lives in OLTP, so the jobs tier cannot accept work either.
    expect(report.tiers.jobs.status).toBe("down");
    expect(report.tiers.notifications.status).toBe("ok");
    expect(ms).toBeLessThan(1500 + 1000);
  });

  it("a Redis outage shows as redis down; Postgres tiers stay ok", async () => {
    await setRedisFault("down");
    const { report } = await health();
    expect(report.tiers.redis.status).toBe("down");
    expect(report.tiers.oltp.status).toBe("ok");
    expect(report.status).toBe("degraded");
  });
});
