// The Worker for the benchmarks that call it over HTTP and need more than plain workerd gives (queues, R2, the Durable
// Object): the production bundle under Miniflare's API (scripts/bench/queue-host.ts), with no wrangler proxy, request
// log or local tracing, logs at warn. These benches ran under `wrangler dev` before; issue 22 asks them not to.
import { execFileSync } from "node:child_process";
import { startQueueHost } from "./queue-host";

export interface BenchWorker {
  base: string;
  /** Resident memory of the runtime (the workerd process Miniflare runs as a child of this one), in MiB. */
  memoryMiB(): number;
  stop(): Promise<void>;
}

export async function startBundledWorker(vars: Record<string, string>, port = 0): Promise<BenchWorker> {
  const host = await startQueueHost(vars, { port });
  return { base: host.base, memoryMiB: () => childMemoryMiB("workerd"), stop: host.stop };
}

function childMemoryMiB(command: string): number {
  try {
    const out = execFileSync("ps", ["-o", "rss=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" });
    return out
      .split("\n")
      .filter((line) => line.includes(command))
      .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0]) / 1024, 0);
  } catch {
    return Number.NaN;
  }
}
