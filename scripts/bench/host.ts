// The benchmark host (issue 22): the bundled Worker under plain workerd with a generated config, as production runs
// it — no wrangler proxy worker, no per-request log line, no local tracing — with the bench build's floor routes.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse as parseToml } from "smol-toml";
import { projectRoot } from "../stack";

export interface BenchHost {
  base: string;
  /** The workerd process serving the Worker. */
  pid: number;
  /** That process's CPU time so far (user + system), in milliseconds, from /proc/<pid>/stat. */
  cpuMs(): number;
  /** The V8 inspector's address when started with one (for `npm run profile`). */
  inspector?: string;
  /** The bundle's source map (until stop). */
  sourceMap: string;
  stop(): Promise<void>;
}

/** What the bench hosts read of wrangler.toml. */
export interface WranglerToml {
  main: string;
  compatibility_date: string;
  compatibility_flags?: string[];
  vars?: Record<string, string>;
  r2_buckets?: Array<{ binding: string; bucket_name: string }>;
  queues?: {
    producers?: Array<{ binding: string; queue: string }>;
    consumers?: Array<{ queue: string; max_batch_size?: number; max_batch_timeout?: number; max_retries?: number; dead_letter_queue?: string }>;
  };
  durable_objects?: { bindings?: Array<{ name: string; class_name: string }> };
}

export const readWranglerToml = () => parseToml(readFileSync(path.join(projectRoot, "wrangler.toml"), "utf8")) as unknown as WranglerToml;

/**
 * /ping answers before the env check; /health does not, so a misconfigured Worker shows here: a 5xx other than 503
 * (a store down) stops the host and throws.
 */
export async function assertHealthy(base: string, stop: () => unknown): Promise<void> {
  const health = await fetch(`${base}/health`, { signal: AbortSignal.timeout(10_000) });
  if (health.status >= 500 && health.status !== 503) {
    await stop();
    throw new Error(`the Worker is up but /health answered ${health.status}: ${(await health.text()).slice(0, 300)}`);
  }
}

/**
 * Bundles `entry` exactly as `npm run build` bundles src/index.ts (wrangler deploy --dry-run, the project's
 * wrangler.toml with only `main` changed), into `outdir`.
 */
export async function bundle(entry: string, outdir: string): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), "edp-bench-build-"));
  try {
    const config = readFileSync(path.join(projectRoot, "wrangler.toml"), "utf8");
    if (!/^main = .*$/m.test(config)) throw new Error("wrangler.toml has no top-level main");
    const configFile = path.join(dir, "wrangler.toml");
    writeFileSync(configFile, config.replace(/^main = .*$/m, `main = ${JSON.stringify(entry)}`));
    await new Promise<void>((resolve, reject) => {
      const build = spawn("wrangler", ["deploy", "--dry-run", "--config", configFile, "--outdir", outdir], { cwd: projectRoot, stdio: ["ignore", "ignore", "inherit"] });
      build.once("error", reject);
      build.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`wrangler deploy --dry-run exited with ${code}`))));
    });
    // wrangler names the bundle after the entry.
    return path.join(outdir, `${path.basename(entry).replace(/\.ts$/, "")}.js`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const clockTicks = 100; // USER_HZ on Linux

function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command (which may hold spaces) start after the last ')'; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
}

const capnpString = (value: string) => JSON.stringify(value);

/**
 * A workerd config: the Worker with the project's compatibility settings, its vars as text bindings, the badge Durable
 * Object (SQLite-backed, in memory), outbound fetch allowed to the local stack. R2 and the queue producers point at a
 * stub that answers every call: the benched routes use neither, and a plain workerd has no local R2 or queue broker.
 */
function workerdConfig(toml: WranglerToml, script: string, vars: Record<string, string>, port: number): string {
  const text = Object.entries(vars).map(([name, value]) => `(name = ${capnpString(name)}, text = ${capnpString(value)})`);
  const r2 = (toml.r2_buckets ?? []).map((b) => `(name = ${capnpString(b.binding)}, r2Bucket = "stub")`);
  const queues = (toml.queues?.producers ?? []).map((p) => `(name = ${capnpString(p.binding)}, queue = "stub")`);
  const objects = toml.durable_objects?.bindings ?? [];
  const namespaces = objects.map((d) => `(name = ${capnpString(d.name)}, durableObjectNamespace = ${capnpString(d.class_name)})`);
  const flags = (toml.compatibility_flags ?? []).map(capnpString).join(", ");
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .mainWorker),
    (name = "stub", worker = .stubWorker),
    (name = "outbound", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const mainWorker :Workerd.Worker = (
  modules = [(name = "index.js", esModule = embed ${capnpString(script)})],
  compatibilityDate = ${capnpString(toml.compatibility_date)},
  compatibilityFlags = [${flags}],
  bindings = [${[...text, ...r2, ...queues, ...namespaces].join(", ")}],
  durableObjectNamespaces = [${objects.map((d) => `(className = ${capnpString(d.class_name)}, uniqueKey = ${capnpString(`edp-bench-${d.class_name}`)}, enableSql = true)`).join(", ")}],
  durableObjectStorage = (inMemory = void),
  globalOutbound = "outbound",
);
const stubWorker :Workerd.Worker = (
  modules = [(name = "stub.js", esModule = "export default { fetch() { return new Response(null, { status: 200 }); } };")],
  compatibilityDate = ${capnpString(toml.compatibility_date)},
);
`;
}

async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as import("node:net").AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Serves the bench build (scripts/bench/floor-entry.ts: the production Worker plus floor routes) under the project's
 * own workerd binary, with the project's vars and `vars`, logs at warn. Queue consumers and cron are not attached:
 * a bench measures the request path alone.
 */
export async function startBenchHost(vars: Record<string, string>, opts: { inspectorPort?: number } = {}): Promise<BenchHost> {
  const dir = mkdtempSync(path.join(tmpdir(), "edp-bench-host-"));
  const script = await bundle(path.join(projectRoot, "scripts/bench/floor-entry.ts"), path.join(dir, "bundle"));
  const toml = readWranglerToml();
  const port = await freePort();
  const configFile = path.join(dir, "bench.capnp");
  writeFileSync(configFile, workerdConfig(toml, path.relative(dir, script), { ...toml.vars, ...vars, LOG_LEVEL: "warn" }, port), { mode: 0o600 });
  const workerd = path.join(projectRoot, "node_modules/.bin/workerd");
  const args = ["serve", configFile, "--experimental", ...(opts.inspectorPort !== undefined ? [`--inspector-addr=127.0.0.1:${opts.inspectorPort}`] : [])];
  const child: ChildProcess = spawn(workerd, args, { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const up = await fetch(`${base}/ping`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
    if (up) {
      await assertHealthy(base, stop);
      const pid = child.pid!;
      return { base, pid, cpuMs: () => cpuMsOf(pid), sourceMap: `${script}.map`, ...(opts.inspectorPort !== undefined ? { inspector: `127.0.0.1:${opts.inspectorPort}` } : {}), stop };
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  await stop();
  throw new Error(`workerd did not answer ${base}/ping within 60 s`);
}
