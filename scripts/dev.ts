// `npm run dev`: the local stack, migrations, a seeded demo tenant, and `wrangler dev` pointed at them.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { envSchema } from "../src/platform/env";
import { dataDir, type Demo, demoSeed, devJwtSecret, mintDevToken, writeDemo } from "./dev-config";
import { projectRoot, startStack } from "./stack";

const port = Number(process.env.PORT ?? 8787);

/** Calls a tRPC procedure of the running Worker over HTTP, as any client would. */
async function callProcedure<T>(base: string, token: string, procedure: string, input?: unknown): Promise<T> {
  const query = input === undefined;
  const response = await fetch(`${base}/trpc/${procedure}`, {
    method: query ? "GET" : "POST",
    headers: { authorization: `Bearer ${token}`, ...(query ? {} : { "content-type": "application/json" }) },
    ...(query ? {} : { body: JSON.stringify(input) }),
  });
  const body = (await response.json()) as { result?: { data: T }; error?: { message: string } };
  if (!body.result) throw new Error(`${procedure}: ${body.error?.message ?? response.status}`);
  return body.result.data;
}

/**
 * The demo tenant, provisioned as an operator would: tenants.create (idempotent by its client key, so a restart
 * finds the same tenant), then its admin adds the member. No owner SQL.
 */
async function seedDemo(base: string): Promise<Demo> {
  const operator = await mintDevToken({ sub: crypto.randomUUID(), tenant_id: crypto.randomUUID(), role: "operator" });
  const { tenant, admin } = await callProcedure<{ tenant: { id: string; name: string }; admin: { id: string; email: string } }>(
    base,
    operator,
    "tenants.create",
    { name: demoSeed.tenant.name, plan: demoSeed.tenant.plan, admin: demoSeed.admin, clientKey: demoSeed.tenant.clientKey },
  );
  const adminToken = await mintDevToken({ sub: admin.id, tenant_id: tenant.id, role: "admin" });
  const members = await callProcedure<{ items: { id: string; email: string }[] }>(
    base,
    adminToken,
    `users.list?input=${encodeURIComponent(JSON.stringify({ role: "member", limit: 100 }))}`,
  );
  const member =
    members.items.find((u) => u.email === demoSeed.member.email) ??
    (await callProcedure<{ id: string; email: string }>(base, adminToken, "users.add", { email: demoSeed.member.email, role: "member" }));
  const demo: Demo = {
    tenant: { id: tenant.id, name: tenant.name },
    admin: { id: admin.id, email: admin.email, role: "admin" },
    member: { id: member.id, email: member.email, role: "member" },
  };
  writeDemo(demo);
  return demo;
}

async function waitForHealth(url: string, child: ReturnType<typeof spawn>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with code ${child.exitCode}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the Worker did not answer ${url} within ${timeoutMs / 1000} s`);
}

const stack = await startStack({ purpose: "dev", dataDir, jwtSecret: devJwtSecret() });

/**
 * The Worker's vars a developer may set in the environment of `npm run dev` (e.g. `CORS_ORIGINS=http://localhost:5173
 * npm run dev`): every variable of the env schema except the bindings and what the local stack itself provides.
 */
const stackOwned = /^(CONTENT_BUCKET|JOBS_.*|.*_DATABASE_URL|UPSTASH_REDIS_REST_.*|NEON_LOCAL_.*|JWT_SECRET)$/;
const overrides = Object.fromEntries(
  Object.keys(envSchema.shape)
    .filter((name) => !stackOwned.test(name) && process.env[name] !== undefined)
    .map((name) => [name, process.env[name]!]),
);
// Tracking links in emails point at the local Worker unless the developer names another origin.
const workerVars: Record<string, string> = { PUBLIC_BASE_URL: `http://127.0.0.1:${port}`, ...stack.workerVars, ...overrides };

// wrangler reads the stack's addresses and the secret from an env file kept out of git.
mkdirSync(dataDir, { recursive: true });
const envFile = path.join(dataDir, "wrangler.env");
writeFileSync(envFile, Object.entries(workerVars).map(([k, v]) => `${k}=${v}`).join("\n") + "\n", { mode: 0o600 });

const wrangler = spawn(
  "wrangler",
  ["dev", "--ip", "127.0.0.1", "--port", String(port), "--env-file", envFile, "--persist-to", path.join(dataDir, "wrangler"), "--test-scheduled", "--show-interactive-dev-session=false"],
  { cwd: projectRoot, stdio: ["ignore", "pipe", "pipe"], detached: true },
);
for (const stream of [wrangler.stdout, wrangler.stderr]) {
  if (stream) createInterface({ input: stream }).on("line", (line) => process.stderr.write(`[wrangler] ${line}\n`));
}

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    if (wrangler.pid && wrangler.exitCode === null) {
      try {
        process.kill(-wrangler.pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    await stack.close();
  }
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
wrangler.on("exit", (code) => {
  if (!stopping) {
    console.error(`wrangler dev exited (${code}); stopping the stack`);
    void stop(code ?? 1);
  }
});

const base = `http://127.0.0.1:${port}`;
try {
  await waitForHealth(`${base}/health`, wrangler);
} catch (error) {
  console.error(String(error));
  await stop(1);
}
// What `npm run seed` needs: the running Worker's address and the OLTP owner connection for its checks.
writeFileSync(path.join(dataDir, "dev-stack.json"), `${JSON.stringify({ url: base, oltpOwnerUrl: stack.databases.ownerUrls.oltp })}\n`, { mode: 0o600 });
const demo = await seedDemo(base).catch((error: unknown) => {
  console.error(`seeding the demo tenant failed: ${String(error)}`);
  return stop(1);
});
const adminToken = await mintDevToken({ sub: demo.admin.id, tenant_id: demo.tenant.id, role: "admin" });
const memberToken = await mintDevToken({ sub: demo.member.id, tenant_id: demo.tenant.id, role: "member" });

console.log(`
Edge data platform running at ${base}
  ${stack.describe()}
  Data kept in ${path.relative(projectRoot, dataDir) || dataDir}/ (delete it to start over)
  CORS_ORIGINS=${workerVars.CORS_ORIGINS}${Object.keys(overrides).length ? `; from your environment: ${Object.keys(overrides).join(", ")}` : ""}

Demo tenant "${demo.tenant.name}" (${demo.tenant.id})
  admin  ${demo.admin.email}
    ${adminToken}
  member ${demo.member.email}
    ${memberToken}

Try:
  curl -s ${base}/health
  curl -s -H "Authorization: Bearer ${adminToken}" ${base}/trpc/tenants.current

More tokens: npm run token -- --role member (default role: admin)
Sample data: npm run seed -- --tenants 3 --leads 500
Ctrl-C stops everything.
`);
