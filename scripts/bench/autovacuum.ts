// A stand-in for autovacuum, for benches on a PostgreSQL server that has it off (this machine's; Neon's is on).
// Without it a bench that fills tables from empty measures two artifacts that grow with the run: dead index entries
// nobody prunes, and statistics of the empty start, with which each session's cached plans (the foreign-key checks'
// among them) stay sequential scans, replanned only when the table is analyzed. So while a bench runs this vacuums
// and analyzes its databases every few seconds, as autovacuum would, and says so in the report.
import pg from "pg";

export interface AutovacuumStandIn {
  /** What the report says of it. */
  note: string;
  stop(): Promise<void>;
}

export async function startAutovacuumStandIn(ownerUrls: string[], options: { intervalMs?: number; log?: (m: string) => void } = {}): Promise<AutovacuumStandIn> {
  const intervalMs = options.intervalMs ?? 5000;
  const probe = new pg.Client({ connectionString: ownerUrls[0] });
  await probe.connect();
  const setting = await probe.query<{ autovacuum: string }>("show autovacuum").finally(() => probe.end());
  if (setting.rows[0]?.autovacuum === "on") return { note: "autovacuum on", stop: async () => undefined };
  let stopped = false;
  let runs = 0;
  const loop = (async () => {
    while (!stopped) {
      for (const url of ownerUrls) {
        if (stopped) break;
        const client = new pg.Client({ connectionString: url });
        try {
          await client.connect();
          await client.query("vacuum analyze");
        } catch (error) {
          options.log?.(`autovacuum stand-in: ${String(error)}`);
        } finally {
          await client.end().catch(() => undefined);
        }
      }
      runs += 1;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    get note() {
      return `autovacuum off on this server: a stand-in ran vacuum analyze every ${intervalMs / 1000} s (${runs} passes)`;
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
