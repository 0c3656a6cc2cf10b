// Runs one bundled build of the Worker under `wrangler dev` against a local stack, for the benchmarks.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { projectRoot } from "../stack";
import { assertHealthy } from "./host";

export interface BenchWorker {
  base: string;
  /** Process group of wrangler dev and its workerd: for memory sampling. */
  pgid: number;
  stop(): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Bundles the Worker once and serves that bundle without watching, so a run measures one fixed
 * build even while src/ is being edited. Bindings, vars and flags come from the project's
 * wrangler.toml; `vars` (the stack's addresses and secrets) go in through an env file.
 */
export async function startBundledWorker(name: string, vars: Record<string, string>, port = 0): Promise<BenchWorker> {
  const dir = mkdtempSync(path.join(tmpdir(), `edp-bench-${name}-`));
  const envFile = path.join(dir, "wrangler.env");
  writeFileSync(envFile, Object.entries({ ...vars, LOG_LEVEL: "error" }).map(([k, v]) => `${k}=${v}`).join("\n") + "\n", { mode: 0o600 });
  const bundleDir = path.join(dir, "bundle");
  await new Promise<void>((resolve, reject) => {
    const build = spawn("wrangler", ["deploy", "--dry-run", "--outdir", bundleDir], { cwd: projectRoot, stdio: ["ignore", "ignore", "inherit"] });
    build.once("error", reject);
    build.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`wrangler deploy --dry-run exited with ${code}`))));
  });
  const configFile = path.join(dir, "wrangler.toml");
  const config = readFileSync(path.join(projectRoot, "wrangler.toml"), "utf8");
  if (!/^main = .*$/m.test(config)) throw new Error("wrangler.toml has no top-level main");
  writeFileSync(configFile, config.replace(/^main = .*$/m, `main = ${JSON.stringify(path.join(bundleDir, "index.js"))}`));
  const listenOn = port > 0 ? port : await freePort();
  const child = spawn(
    "wrangler",
    ["dev", "--config", configFile, "--no-bundle", "--ip", "127.0.0.1", "--port", String(listenOn), "--env-file", envFile, "--persist-to", path.join(dir, "state"), "--log-level", "error", "--show-interactive-dev-session=false"],
    { cwd: projectRoot, stdio: ["ignore", "ignore", "inherit"], detached: true },
  );
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${listenOn}`;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const up = await fetch(`${base}/ping`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
    if (up) {
      await assertHealthy(base, stop);
      return { base, pgid: child.pid!, stop };
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  stop();
  throw new Error(`wrangler dev did not answer ${base}/ping within 120 s`);
}
