// The benchmarks' load client: autocannon in a separate Node process (so the load never shares an event loop with the
// stack or the measuring script), latencies taken from its response events (sub-millisecond), requests rotating over
// a list of specs. Every call and its floor go through this one client with the same connections and pacing.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { percentile } from "./result";

export interface Spec {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface LoadResult {
  latencies: number[];
  errors: number;
  non2xx: number;
  firstStatus?: number;
  elapsedS: number;
}

export interface Measured {
  n: number;
  p50: number;
  p99: number;
  rps: number;
  cpuMsPerRequest: number;
  errors: number;
}

const autocannonPath = createRequire(import.meta.url).resolve("autocannon");
const loadClientSource = `
const autocannon = require(${JSON.stringify(autocannonPath)});
process.once("message", (job) => {
  const latencies = [];
  let non2xx = 0, firstStatus, next = 0;
  const started = performance.now();
  const opts = {
    url: job.url, connections: job.connections, duration: job.duration, pipelining: 1,
    requests: [{ setupRequest(req) {
      const spec = job.specs[next++ % job.specs.length];
      return { ...req, method: spec.method, path: spec.path, headers: spec.headers, body: spec.body };
    } }],
  };
  const instance = autocannon(opts, (error, result) => {
    process.send({ latencies, non2xx, firstStatus, errors: (result ? result.errors + result.timeouts : 0) + (error ? 1 : 0), elapsedS: (performance.now() - started) / 1000 }, () => process.exit(0));
  });
  instance.on("response", (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) latencies.push(ms);
    else { non2xx++; firstStatus ??= status; }
  });
});
`;

/** Loads `url` with `specs` in turn from a child process for `durationS` seconds over `connections` connections. */
export function load(url: string, specs: Spec[], connections: number, durationS: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", loadClientSource], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    child.once("message", (message) => resolve(message as LoadResult));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? undefined : reject(new Error(`load client exited with ${code}`))));
    child.send({ url, specs, connections, duration: durationS });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One measured load against a host: p50 / p99 / req/s from the client, CPU per request from the host process's CPU
 * time over the run (the work it does after responding included: the run waits for it to settle).
 */
export async function measureLoad(
  host: { base: string; cpuMs(): number },
  specs: Spec[],
  opts: { connections: number; durationS: number; log?: (message: string) => void },
): Promise<Measured> {
  await sleep(300);
  const cpuBefore = host.cpuMs();
  const result = await load(host.base, specs, opts.connections, opts.durationS);
  await sleep(200);
  const cpu = host.cpuMs() - cpuBefore;
  if (result.errors || result.non2xx) opts.log?.(`  ${result.errors} errors, ${result.non2xx} non-2xx (first status ${result.firstStatus ?? "–"})`);
  const sorted = [...result.latencies].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    rps: sorted.length / result.elapsedS,
    cpuMsPerRequest: cpu / Math.max(1, sorted.length + result.non2xx),
    errors: result.errors + result.non2xx,
  };
}
