// The live badge in a real browser: headless Chromium opens a page served from another origin, the page mints a
// ticket and opens the badge's WebSocket on the bundled Worker under Miniflare (scripts/bench/worker.ts), and changes made from Node show
// on the page without a reload. Skips (saying why) where Debian's chromium is absent, unless REQUIRE_CHROMIUM=1.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createTRPCClient, httpLink } from "@trpc/client";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { startBundledWorker, type BenchWorker } from "../../scripts/bench/worker";
import { mintToken } from "../../scripts/jwt";
import { type Stack, startStack } from "../../scripts/stack";
import type { AppRouter } from "../../src/index";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(chromiumPath);
if (!haveChromium) {
  if (process.env.REQUIRE_CHROMIUM === "1") throw new Error(`REQUIRE_CHROMIUM=1 but there is no Chromium at ${chromiumPath} (apt-get install -y chromium)`);
  console.warn(`[skip] the live-badge browser test needs Debian's chromium at ${chromiumPath} (apt-get install -y chromium); set REQUIRE_CHROMIUM=1 to make its absence a failure`);
}

/**
 * The page a tenant's web app would serve: it mints a ticket with the user's bearer token (CORS), opens the badge's
 * WebSocket with it and writes each pushed count into #badge. `connect` is exposed so the test can retry a ticket.
 */
const badgePage = `<!doctype html>
<meta charset="utf-8"><title>badge</title>
<p>Unread: <span id="badge">-</span></p>
<script>
const params = new URLSearchParams(location.hash.slice(1));
const api = params.get("api");
const token = params.get("token");
window.loadId = Math.random().toString(36).slice(2);
window.mintTicket = async () => {
  const r = await fetch(api + "/trpc/notifications.badgeTicket", { method: "POST", headers: { authorization: "Bearer " + token } });
  if (!r.ok) throw new Error("badgeTicket answered " + r.status);
  return (await r.json()).result.data.ticket;
};
window.connect = (ticket) => new Promise((resolve) => {
  const ws = new WebSocket(api.replace(/^http/, "ws") + "/v1/notifications/live?ticket=" + encodeURIComponent(ticket));
  let opened = false;
  ws.onopen = () => { opened = true; resolve("open"); };
  ws.onmessage = (e) => { document.getElementById("badge").textContent = String(JSON.parse(e.data).unread); };
  ws.onclose = () => { if (!opened) resolve("refused"); };
});
window.ready = (async () => {
  window.usedTicket = await window.mintTicket();
  return window.connect(window.usedTicket);
})();
</script>`;

/** Evaluates an expression in the page (a string: this project type-checks without the DOM library). */
const inPage = <T = unknown>(page: Page, expression: string) => page.evaluate(expression) as Promise<T>;

describe.skipIf(!haveChromium)("the live badge in headless Chromium", () => {
  const jwtSecret = `browser-${randomUUID()}`;
  let stack: Stack;
  let worker: BenchWorker;
  let pageServer: Server;
  let pageOrigin: string;
  let browser: Browser;

  beforeAll(async () => {
    // Embedded stores of its own: with DATABASE_URL set, a second "test" stack on the same server would drop the
    // databases of the worker tests' stack (they share fixed names) while those run.
    const env = { ...process.env };
    for (const name of ["DATABASE_URL", "REDIS_URL", "OLTP_DATABASE_URL", "NOTIFICATIONS_DATABASE_URL", "OLAP_DATABASE_URL"]) delete env[name];
    stack = await startStack({ purpose: "test", jwtSecret, env });
    worker = await startBundledWorker(stack.workerVars);
    pageServer = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(badgePage);
    });
    await new Promise<void>((resolve) => pageServer.listen(0, "127.0.0.1", resolve));
    // "localhost" against the Worker's "127.0.0.1" and another port: a different origin in both host and port.
    pageOrigin = `http://localhost:${(pageServer.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (pageServer ? pageServer.close(resolve) : resolve(undefined)));
    await worker?.stop();
    await stack?.close();
  }, 60_000);

  const client = (token: string) => createTRPCClient<AppRouter>({ links: [httpLink({ url: `${worker.base}/trpc`, headers: { authorization: `Bearer ${token}` } })] });

  /** A fresh tenant provisioned as an operator would, with its admin and one member. */
  async function provision() {
    const operator = await mintToken(jwtSecret, { sub: randomUUID(), tenant_id: randomUUID(), role: "operator" });
    const { tenant, admin } = await client(operator).tenants.create.mutate({ name: `Browser ${randomUUID().slice(0, 8)}`, plan: "pro", admin: { email: `admin-${randomUUID()}@example.test` } });
    const adminToken = await mintToken(jwtSecret, { sub: admin.id, tenant_id: tenant.id, role: "admin" });
    const member = await client(adminToken).users.add.mutate({ email: `member-${randomUUID()}@example.test`, role: "member" });
    const memberToken = await mintToken(jwtSecret, { sub: member.id, tenant_id: tenant.id, role: "member" });
    return { tenantId: tenant.id, admin: client(adminToken), member: client(memberToken), memberId: member.id, memberToken };
  }

  async function openBadgePage(memberToken: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`${pageOrigin}/#api=${encodeURIComponent(worker.base)}&token=${encodeURIComponent(memberToken)}`);
    expect(await inPage(page, "window.ready")).toBe("open");
    return page;
  }

  const badgeShows = (page: Page, count: number, timeout: number) =>
    page.waitForFunction(`document.getElementById("badge").textContent === ${JSON.stringify(String(count))}`, undefined, { timeout, polling: 10 });

  it("a page on another origin shows each change without a reload within a second: create, then mark read", async () => {
    const t = await provision();
    const page = await openBadgePage(t.memberToken);
    await badgeShows(page, 0, 5000);
    const loadId = await inPage(page, "window.loadId");

    const created = await t.admin.notifications.create.mutate({ userId: t.memberId, type: "browser.test", title: "Hello", message: "from Node" });
    await badgeShows(page, 1, 1000);
    await t.admin.notifications.create.mutate({ userId: null, type: "browser.test", title: "Everyone", message: "tenant-wide" });
    await badgeShows(page, 2, 1000);

    await t.member.notifications.markRead.mutate({ ids: [created.id] });
    await badgeShows(page, 1, 1000);
    await t.member.notifications.markAllRead.mutate();
    await badgeShows(page, 0, 1000);

    // The same document all along: the count arrived over the socket, not by a reload.
    expect(await inPage(page, "window.loadId")).toBe(loadId);
    expect(await inPage(page, 'performance.getEntriesByType("navigation").length')).toBe(1);
    await page.close();
  }, 60_000);

  it("a replayed ticket is refused in the browser, and a ticket stolen from the page is refused to the thief", async () => {
    const t = await provision();
    const page = await openBadgePage(t.memberToken);
    const used = await inPage<string>(page, "window.usedTicket");

    // Replay by the page itself (a second socket with the ticket its first one redeemed).
    expect(await inPage(page, `window.connect(${JSON.stringify(used)})`)).toBe("refused");

    // A thief who read the ticket from the page (its URL, a log): the Worker answers the handshake with 401.
    const refusal = (ticket: string, origin: string) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`${worker.base.replace(/^http/, "ws")}/v1/notifications/live?ticket=${encodeURIComponent(ticket)}`, { headers: { origin } });
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("open", () => {
          ws.close();
          reject(new Error("the stolen ticket opened a socket"));
        });
        ws.on("error", reject);
      });
    expect(await refusal(used, "https://attacker.example")).toBe(401);

    // A ticket the page minted but has not used yet is single-use too: whoever redeems it first, the second is refused.
    const fresh = await inPage<string>(page, "window.mintTicket()");
    expect(await inPage(page, `window.connect(${JSON.stringify(fresh)})`)).toBe("open");
    expect(await refusal(fresh, "https://attacker.example")).toBe(401);

    // The refused attempts did not disturb the page's live socket.
    await t.admin.notifications.create.mutate({ userId: t.memberId, type: "browser.test", title: "Still live", message: "after the refusals" });
    await badgeShows(page, 1, 1000);
    await page.close();
  }, 60_000);
});
