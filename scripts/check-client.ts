// `npm run check:client [-- --run]`: what an outside app sees of the client entry, checked from outside.
//
// Builds dist-client/, packs this repository with `npm pack`, installs the tarball into a fresh project in
// a temporary folder (no access to this repository's node_modules or tsconfig), copies examples/ there and
// type-checks the browser page under strict `lib: ["DOM", "ES2022"]` with no Worker or Node types and the
// Node script with Node's types, both with `skipLibCheck: false` (every declaration the package ships is
// checked). With `--run` it also starts the Worker as `npm run dev` does (its own data folder and port) and
// runs examples/node/flow.ts and `npm run seed` (2 tenants, 150 leads) against it. Fails on any error.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { buildClient } from "./build-client";
import { demo } from "./dev-config";
import { mintToken } from "./jwt";
import { projectRoot } from "./stack";

const { values: args } = parseArgs({ options: { run: { type: "boolean", default: false }, keep: { type: "boolean", default: false } } });
const bin = (name: string) => path.join(projectRoot, "node_modules", ".bin", name);
const elapsed = (since: number) => `${((performance.now() - since) / 1000).toFixed(2)} s`;

function run(command: string, argv: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync(command, argv, { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    process.stderr.write(`${failed.stdout ?? ""}${failed.stderr ?? ""}`);
    throw new Error(`${path.basename(command)} ${argv.join(" ")} failed in ${cwd}`);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function waitForHealth(url: string, exited: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited()) throw new Error("npm run dev exited before the Worker answered");
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(2000) })).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the Worker did not answer ${url} within ${timeoutMs / 1000} s`);
}

/** Starts scripts/dev.ts on its own port and data folder, runs `body`, then stops it (and everything it started). */
async function withDevWorker(dataDir: string, body: (url: string, token: string, env: NodeJS.ProcessEnv) => Promise<void>): Promise<void> {
  const port = await freePort();
  const secret = randomBytes(32).toString("hex");
  const env = { ...process.env, PORT: String(port), EDP_DATA_DIR: dataDir, JWT_SECRET: secret, LOG_LEVEL: "warn" };
  const dev = spawn(bin("tsx"), ["scripts/dev.ts"], {
    cwd: projectRoot,
    env,
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  let log = "";
  dev.stderr?.on("data", (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => dev.on("exit", () => resolve()));
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitForHealth(`${url}/health`, () => dev.exitCode !== null);
    const token = await mintToken(secret, { sub: demo.admin.id, tenant_id: demo.tenant.id, role: "admin" }, "10m");
    await body(url, token, env);
  } catch (error) {
    process.stderr.write(`--- npm run dev (last output) ---\n${log}\n`);
    throw error;
  } finally {
    if (dev.exitCode === null && dev.pid) {
      process.kill(dev.pid, "SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      if (dev.exitCode === null) process.kill(-dev.pid, "SIGKILL");
    }
  }
}

const work = mkdtempSync(path.join(tmpdir(), "edp-client-check-"));
try {
  let started = performance.now();
  const built = buildClient();
  console.log(`built dist-client/: ${built.declarations} declaration files reachable from the entry (${elapsed(started)})`);

  started = performance.now();
  const [packed] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], projectRoot)) as Array<{ filename: string; size: number; entryCount: number }>;
  console.log(`npm pack: ${packed!.filename}, ${packed!.entryCount} files, ${packed!.size} bytes (${elapsed(started)})`);

  // The consumer: its own package.json and tsconfigs, nothing from this repository but the tarball and examples/.
  const app = path.join(work, "app");
  cpSync(path.join(projectRoot, "examples"), app, { recursive: true });
  const nodeTypes = (JSON.parse(readFileSync(path.join(projectRoot, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies["@types/node"];
  writeFileSync(
    path.join(app, "package.json"),
    `${JSON.stringify({ name: "edp-client-check", private: true, type: "module", dependencies: { "edge-data-platform": `file:../${packed!.filename}` }, devDependencies: { "@types/node": nodeTypes } }, null, 2)}\n`,
  );
  started = performance.now();
  run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts"], app);
  console.log(`npm install of the tarball into ${app} (${elapsed(started)})`);

  const checks: Array<[string, string[], string]> = [
    ["notification-center", [], "strict, lib DOM + ES2022, no Worker or Node types"],
    // The same page with every shipped declaration checked; ESNext.Disposable because @trpc/server's own declarations name it.
    ["notification-center", ["--skipLibCheck", "false", "--lib", "DOM,ES2022,ESNext.Disposable"], "the same, skipLibCheck false"],
    ["node", [], "strict, Node types, skipLibCheck false"],
  ];
  for (const [example, extra, what] of checks) {
    started = performance.now();
    run(bin("tsc"), ["-p", path.join(example, "tsconfig.json"), ...extra], app);
    console.log(`tsc examples/${example} (${what}): ok (${elapsed(started)})`);
  }

  if (args.run) {
    started = performance.now();
    await withDevWorker(path.join(work, "dev-data"), async (url, token, env) => {
      console.log(`npm run dev answered at ${url} (${elapsed(started)})`);
      const output = run(bin("tsx"), ["node/flow.ts"], app, { ...process.env, EDP_URL: url, EDP_TOKEN: token });
      process.stdout.write(`${output.trimEnd().replace(/^/gm, "  flow | ")}\n`);
      if (!output.includes("flow ok")) throw new Error("examples/node/flow.ts did not finish");
      // npm run seed against the same Worker: it reads every tenant's leads back and fails on a shortfall.
      const seeded = run(bin("tsx"), ["scripts/seed.ts", "--tenants", "2", "--leads", "150"], projectRoot, env);
      process.stdout.write(`${seeded.trimEnd().replace(/^/gm, "  seed | ")}\n`);
    });
    console.log(`flow against npm run dev: ok (${elapsed(started)})`);
  }
} finally {
  if (args.keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
