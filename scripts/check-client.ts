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
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { buildClient } from "./build-client";
import type { Demo } from "./dev-config";
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

const allowedOrigin = "https://app.example.test";

/** The origin a CORS preflight from `origin` is allowed as, or null. */
async function corsAllows(url: string, origin: string): Promise<string | null> {
  const response = await fetch(`${url}/trpc/users.me`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "GET" } });
  return response.headers.get("access-control-allow-origin");
}

/** A curl command for `operation` of the OpenAPI document: the method, the path, and the input where the document puts it. */
function curlFromDocument(doc: OpenApi, url: string, path: string, token: string, input?: unknown): string[] {
  const [method, operation] = Object.entries(doc.paths[path]!)[0]!;
  const argv = ["-s", "-w", "\\n%{http_code}", "-X", method.toUpperCase(), "-H", `Authorization: Bearer ${token}`];
  const query = operation.parameters?.find((p) => p.in === "query");
  if (input !== undefined && query) argv.push("-G", "--data-urlencode", `${query.name}=${JSON.stringify(input)}`);
  if (input !== undefined && operation.requestBody) argv.push("-H", `Content-Type: ${Object.keys(operation.requestBody.content)[0]}`, "--data", JSON.stringify(input));
  return [...argv, `${url}${path}`];
}
type OpenApi = { paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }>; requestBody?: { content: Record<string, unknown> } }>> };

/** Starts scripts/dev.ts on its own port and data folder, runs `body`, then stops it (and everything it started). */
async function withDevWorker(dataDir: string, body: (url: string, token: string, env: NodeJS.ProcessEnv) => Promise<void>): Promise<void> {
  const port = await freePort();
  const secret = randomBytes(32).toString("hex");
  // CORS_ORIGINS from the environment: npm run dev must pass it to the Worker instead of its default `*`.
  const env = { ...process.env, PORT: String(port), EDP_DATA_DIR: dataDir, JWT_SECRET: secret, LOG_LEVEL: "warn", CORS_ORIGINS: allowedOrigin };
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
    // `npm run dev` provisions the demo tenant through the API once healthy, then records its ids in its data folder.
    const demoFile = path.join(dataDir, "demo.json");
    for (const deadline = Date.now() + 60_000; !existsSync(demoFile); ) {
      if (Date.now() > deadline || dev.exitCode !== null) throw new Error("npm run dev did not provision its demo tenant");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const demo = JSON.parse(readFileSync(demoFile, "utf8")) as Demo;
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
      // CORS_ORIGINS came from the environment.
      if ((await corsAllows(url, allowedOrigin)) !== allowedOrigin || (await corsAllows(url, "https://elsewhere.example.test")) !== null) {
        throw new Error(`npm run dev did not take CORS_ORIGINS=${allowedOrigin} from the environment`);
      }
      console.log(`CORS_ORIGINS=${allowedOrigin} from the environment: that origin allowed, another refused`);
      // A mutation and a query as curl sends them, built from /openapi.json alone.
      const doc = (await (await fetch(`${url}/openapi.json`)).json()) as OpenApi;
      const created = run("curl", curlFromDocument(doc, url, "/trpc/campaigns.create", token, { name: "From curl", startsAt: "2027-01-04T09:00:00Z" }), app);
      const campaign = (JSON.parse(created.replace(/\n200$/, "")) as { result: { data: { id: string; startsAt: string } } }).result.data;
      const read = run("curl", curlFromDocument(doc, url, "/trpc/campaigns.get", token, { id: campaign.id }), app);
      if (!read.endsWith("\n200") || !read.includes(campaign.id) || campaign.startsAt !== "2027-01-04T09:00:00.000Z") throw new Error(`curl from /openapi.json: ${created} / ${read}`);
      console.log("curl calls built from /openapi.json (POST campaigns.create, GET campaigns.get?input=): { result: { data } }");
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
