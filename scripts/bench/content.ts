// Content benchmark (issue 5, "Performance"): storage on the real corpus beside plain gzip and brotli-q5, the campaign
// scenario (personalised renders of every Postmark and Mailchimp template plus a shared attachment), and create/get
// through the running Worker with OLTP and R2 round trips per create. A measurement, not a test: it exits non-zero
// only when it crashes, and prints missed targets as such.
// Usage: npm run bench:content [-- --renders 1000 --worker-creates 200 --connections 8 --corpus ../shared/corpus]
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { mintToken } from "../jwt";
import pg from "pg";
import { contentConfig } from "../../src/tiers/content/config";
import { encodeObject, hashObject, type ContentBucket } from "../../src/tiers/content/services/blobs";
import { prepareEmailContent, storeContent, type EmailContentInput } from "../../src/tiers/content/services/writes";
import { personalise, recipient } from "../../test/support/content-campaign";
import { projectRoot, startStack } from "../stack";
import { percentile } from "./result";
import { startBundledWorker } from "./worker";

const { values: args } = parseArgs({
  options: {
    renders: { type: "string", default: "1000" },
    "worker-creates": { type: "string", default: "200" },
    connections: { type: "string", default: "8" },
    corpus: { type: "string", default: path.join("..", "shared", "corpus") },
  },
});
const rendersPerTemplate = Number(args.renders);
const workerCreates = Number(args["worker-creates"]);
const connections = Number(args.connections);
/** Relative to the project root, as the corpus sits beside the repository. */
const corpusDir = path.resolve(projectRoot, args.corpus);

const log = (message: string) => console.error(`[bench] ${message}`);
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(2)}%`;
const saved = (stored: number, raw: number) => `${((100 * (raw - stored)) / raw).toFixed(1)}%`;
const tenantId = randomUUID();

if (!existsSync(corpusDir)) throw new Error(`no corpus at ${corpusDir} (pass --corpus, relative to the project root)`);
const folders = readdirSync(corpusDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();
const filesOf = (folder: string) => readdirSync(path.join(corpusDir, folder)).sort();
const read = (folder: string, name: string) => new Uint8Array(readFileSync(path.join(corpusDir, folder, name)));

// ---------------------------------------------------------------------------------------------------------------
// 1. Per-file storage: each file as the store keeps an attachment (its own encoding, deduplicated inside the
//    tenant) beside plain gzip (level 6) and brotli quality 5 of the same file.

const brotliQ5 = (bytes: Uint8Array) => brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength } });

console.log("\n## Corpus: bytes saved per folder (store as built vs plain gzip and brotli-q5 per file)\n");
console.log("| folder | files | raw | gzip saved | brotli-q5 saved | store saved | store ≤ brotli-q5 |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
const overall = { files: 0, raw: 0, gzip: 0, br5: 0, store: 0 };
const storedHashes = new Set<string>();
let everyFolderMet = true;
for (const folder of folders) {
  const totals = { files: 0, raw: 0, gzip: 0, br5: 0, store: 0 };
  for (const name of filesOf(folder)) {
    const bytes = read(folder, name);
    const object = encodeObject(await hashObject(tenantId, bytes), contentConfig.exhaustiveCompressionBytes);
    totals.files += 1;
    totals.raw += bytes.byteLength;
    totals.gzip += gzipSync(bytes).byteLength;
    totals.br5 += brotliQ5(bytes).byteLength;
    if (!storedHashes.has(object.hash)) totals.store += object.storedSize;
    storedHashes.add(object.hash);
  }
  const met = totals.store <= totals.br5;
  everyFolderMet &&= met;
  for (const key of Object.keys(overall) as (keyof typeof overall)[]) overall[key] += totals[key];
  console.log(`| ${folder} | ${totals.files} | ${kib(totals.raw)} | ${saved(totals.gzip, totals.raw)} | ${saved(totals.br5, totals.raw)} | ${saved(totals.store, totals.raw)} | ${met ? "yes" : "**MISSED**"} |`);
}
console.log(`| overall | ${overall.files} | ${kib(overall.raw)} | ${saved(overall.gzip, overall.raw)} | ${saved(overall.br5, overall.raw)} | ${saved(overall.store, overall.raw)} | ${everyFolderMet ? "yes, every folder" : "**MISSED**"} |`);

// ---------------------------------------------------------------------------------------------------------------
// 2. The campaign scenario: every Postmark and Mailchimp HTML template (with its text part where the corpus has
//    one) rendered for `rendersPerTemplate` recipients, each email carrying the same attachment. Encoded by the
//    write path itself (prepareEmailContent) and stored through its R2 step (storeContent) into a counting bucket.

/** A stand-in for the shared attachment: a 100 KiB already-compressed file (a PDF's streams are deflated). */
const sharedAttachment = (() => {
  const bytes = new Uint8Array(100 * 1024);
  let state = 0x2545f491;
  for (let i = 0; i < bytes.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return Buffer.from(bytes).toString("base64");
})();

interface Template {
  folder: string;
  name: string;
  html: string;
  text: string;
}

function templatesOf(folder: string): Template[] {
  const names = new Set(filesOf(folder));
  return [...names]
    .filter((n) => n.endsWith(".html"))
    .map((name) => {
      const textName = name.replace(/\.html$/, ".txt");
      const decode = (n: string) => new TextDecoder().decode(read(folder, n));
      return { folder, name, html: decode(name), text: names.has(textName) ? decode(textName) : "" };
    });
}

function renderInput(template: Template, i: number, withAttachment: boolean): EmailContentInput {
  const r = recipient(i);
  return {
    body: {
      text: template.text ? personalise(template.text, r) : "",
      html: personalise(template.html, r),
      headers: { To: `${r.firstName} ${r.lastName} <${r.email}>`, "X-Campaign": template.name },
      // The serialized body is the text then the HTML, so the dictionary is too.
      template: template.text + template.html,
    },
    attachments: withAttachment ? [{ filename: "brochure.pdf", mimeType: "application/pdf", content: sharedAttachment, disposition: "attachment" }] : [],
  };
}

/** R2 as a map, counting the write path's calls: the only R2 traffic of a create that succeeds. */
function countingBucket() {
  const objects = new Map<string, { size: number; customMetadata: Record<string, string> }>();
  const calls = { head: 0, put: 0 };
  const bucket = {
    head: async (key: string) => {
      calls.head += 1;
      const object = objects.get(key);
      return object ? ({ key, ...object } as unknown as R2Object) : null;
    },
    put: async (key: string, value: Uint8Array, options?: R2PutOptions) => {
      calls.put += 1;
      objects.set(key, { size: value.byteLength, customMetadata: options?.customMetadata ?? {} });
      return { key } as R2Object;
    },
    get: async () => null,
    delete: async () => undefined,
  } as unknown as ContentBucket;
  return { bucket, calls, storedBytes: () => [...objects.values()].reduce((sum, o) => sum + o.size, 0) };
}

console.log(`\n## Campaign scenario: ${rendersPerTemplate} personalised renders of each template, plus one shared 100 KiB attachment\n`);
console.log("| templates | emails | raw bodies | stored bodies + templates | bodies stored/raw | raw incl. attachment | stored incl. attachment | stored/raw | target ≤ 5% | R2 calls per create |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |");
let campaignMet = true;
const scenario = { emails: 0, rawBodies: 0, raw: 0, stored: 0, storedBodies: 0, calls: 0 };
for (const folder of ["postmark", "mailchimp"]) {
  const templates = templatesOf(folder);
  const { bucket, calls, storedBytes } = countingBucket();
  const attachmentRaw = (sharedAttachment.length * 3) / 4;
  let emails = 0;
  let rawBodies = 0;
  let attachmentStored = 0;
  const t0 = performance.now();
  for (const template of templates) {
    for (let i = 0; i < rendersPerTemplate; i++) {
      const prepared = await prepareEmailContent(tenantId, renderInput(template, i, true), contentConfig);
      const stored = await storeContent(bucket, prepared, contentConfig);
      rawBodies += prepared.parts[0]!.object.raw!.byteLength;
      attachmentStored = stored.objects.get(prepared.parts[1]!.object.hash)!.storedSize;
      emails += 1;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const stored = storedBytes();
  const storedBodies = stored - attachmentStored;
  const raw = rawBodies + emails * attachmentRaw;
  const met = storedBodies / rawBodies <= 0.05;
  campaignMet &&= met;
  Object.assign(scenario, {
    emails: scenario.emails + emails,
    rawBodies: scenario.rawBodies + rawBodies,
    raw: scenario.raw + raw,
    stored: scenario.stored + stored,
    storedBodies: scenario.storedBodies + storedBodies,
    calls: scenario.calls + calls.head + calls.put,
  });
  console.log(
    `| ${folder} (${templates.length}) | ${emails} | ${kib(rawBodies)} | ${kib(storedBodies)} | ${pct(storedBodies, rawBodies)} | ${kib(raw)} | ${kib(stored)} | ${pct(stored, raw)} | ${met ? "yes" : "**MISSED**"} | ${((calls.head + calls.put) / emails).toFixed(2)} |`,
  );
  log(`${folder}: ${emails} renders encoded in ${seconds.toFixed(1)} s (${(emails / seconds).toFixed(0)}/s on one core)`);
}
console.log(
  `| both | ${scenario.emails} | ${kib(scenario.rawBodies)} | ${kib(scenario.storedBodies)} | ${pct(scenario.storedBodies, scenario.rawBodies)} | ${kib(scenario.raw)} | ${kib(scenario.stored)} | ${pct(scenario.stored, scenario.raw)} | ${campaignMet ? "yes" : "**MISSED**"} | ${(scenario.calls / scenario.emails).toFixed(2)} |`,
);
console.log("\nThe target is judged on bodies alone (templates counted once each): the shared attachment, stored once, would meet it by itself.");

// ---------------------------------------------------------------------------------------------------------------
// 3. Through the Worker: the bundled Worker under Miniflare (scripts/bench/worker.ts) against a fresh local stack (never .data/).

const jwtSecret = `bench-${randomUUID()}-${randomUUID()}`;
const stack = await startStack({ purpose: "test", jwtSecret });
log(stack.describe());



/** The tenant and its admin, written as the app role the way the test factories do. */
async function seedTenant(): Promise<string> {
  const embedded = stack.databases.kind === "pglite";
  const url = new URL(stack.databases.ownerUrls.oltp);
  if (embedded) {
    url.username = "app_user";
    url.password = "";
  }
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  const adminId = randomUUID();
  try {
    await client.query("begin");
    if (!embedded) await client.query("set local role app_user");
    await client.query("select set_config('app.current_tenant_id', $1, true), set_config('app.current_user_id', $2, true)", [tenantId, adminId]);
    await client.query("insert into tenants (id, name) values ($1, 'Content bench')", [tenantId]);
    await client.query("insert into users (id, tenant_id, email, role) values ($1, $2, 'admin@bench.example', 'admin')", [adminId, tenantId]);
    await client.query("commit");
  } finally {
    await client.end();
  }
  return mintToken(jwtSecret, { sub: adminId, tenant_id: tenantId, role: "admin" });
}

const worker = await startBundledWorker(stack.workerVars, 0);
const token = await seedTenant();
const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };

async function call<T>(kind: "query" | "mutation", procedure: string, input: unknown): Promise<T> {
  const response =
    kind === "query"
      ? await fetch(`${worker.base}/trpc/${procedure}?input=${encodeURIComponent(JSON.stringify(input))}`, { headers, signal: AbortSignal.timeout(30_000) })
      : await fetch(`${worker.base}/trpc/${procedure}`, { method: "POST", headers, body: JSON.stringify(input), signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${procedure} answered ${response.status}: ${text.slice(0, 300)}`);
  return (JSON.parse(text) as { result: { data: T } }).result.data;
}

const summarize = (latencies: number[]) => {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
};
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const trips = (values: number[]) => `${Math.min(...values)} / ${median(values)}`;
const oltpTrips = () => stack.neon.roundTrips().oltp ?? 0;

try {
  const domain = await call<{ id: string; name: string }>("mutation", "domains.add", { name: "mail.bench.example" });
  const mailbox = await call<{ id: string }>("mutation", "mailboxes.add", { domainId: domain.id, address: `sales@${domain.name}` });
  const lead = await call<{ id: string }>("mutation", "leads.create", { email: "lead@bench.example" });
  const templates = [...templatesOf("postmark"), ...templatesOf("mailchimp")];
  const createInput = (i: number) => {
    const template = templates[i % templates.length]!;
    const { body, attachments } = renderInput(template, 100_000 + i, true);
    return { leadId: lead.id, mailboxId: mailbox.id, subject: `Hello ${recipient(i).firstName}`, body, attachments };
  };
  // Warm up (first template puts, isolate start) outside the figures.
  for (let i = 0; i < templates.length; i++) await call("mutation", "emails.create", createInput(i));

  // Sequential creates: latency, and the OLTP round trips counted from reset to response. Queue deliveries of
  // earlier creates (INDEX_CONTENT, SEND_EMAIL) run meanwhile and land in some windows, so the minimum (the
  // call alone) is printed beside the median.
  const createLatencies: number[] = [];
  const createTrips: number[] = [];
  const created: string[] = [];
  for (let i = 0; i < workerCreates; i++) {
    stack.neon.resetRoundTrips();
    const t0 = performance.now();
    const email = await call<{ id: string }>("mutation", "emails.create", createInput(templates.length + i));
    createLatencies.push(performance.now() - t0);
    createTrips.push(oltpTrips());
    created.push(email.id);
  }

  // Concurrent creates: writes per second with `connections` in flight.
  let next = 0;
  const total = workerCreates;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < total) {
        const i = next++;
        await call("mutation", "emails.create", createInput(templates.length + workerCreates + i));
      }
    }),
  );
  const writesPerSecond = total / ((performance.now() - t0) / 1000);

  const getLatencies: number[] = [];
  const getTrips: number[] = [];
  for (const emailId of created) {
    stack.neon.resetRoundTrips();
    const t1 = performance.now();
    await call("query", "content.get", { emailId });
    getLatencies.push(performance.now() - t1);
    getTrips.push(oltpTrips());
  }

  const creates = summarize(createLatencies);
  const gets = summarize(getLatencies);
  console.log(`\n## Through the Worker (the bundle under Miniflare, local stack; campaign renders with the shared attachment)\n`);
  console.log("| call | n | p50 ms | p99 ms | OLTP round trips (min / median) | R2 calls |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  console.log(`| emails.create | ${creates.n} | ${creates.p50.toFixed(1)} | ${creates.p99.toFixed(1)} | ${trips(createTrips)} | ${(scenario.calls / scenario.emails).toFixed(2)} (head per object, put per new one) |`);
  console.log(`| content.get | ${gets.n} | ${gets.p50.toFixed(1)} | ${gets.p99.toFixed(1)} | ${trips(getTrips)} | 1 (+1 for a template not yet cached in the isolate) |`);
  console.log(`\nwrites/s: ${writesPerSecond.toFixed(1)} with ${connections} concurrent creates (${total} emails)`);
} finally {
  await worker.stop();
  await stack.close();
}
