// CPU profiles of the bench host (issue 22): V8's sampling profiler through workerd's inspector (Chrome DevTools
// protocol, Profiler.start/stop over a WebSocket), summarized as self time by package (node_modules/<pkg>) or source
// folder (src/<dir>), resolved through the bundle's source map.
import { readFileSync } from "node:fs";
import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";
import WebSocket from "ws";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Connects to the Worker's isolate in workerd's inspector and runs `during` between Profiler.start and stop. */
export async function profileWhile(inspector: string, during: () => Promise<void>, worker?: string): Promise<CpuProfile> {
  const targets = (await (await fetch(`http://${inspector}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string; title?: string }>;
  // Under Miniflare the inspector also lists its own workers (the queue broker among them): pick the one named.
  const target = worker ? targets.find((t) => t.title?.includes(worker)) : targets[0];
  if (!target) throw new Error(`workerd's inspector at ${inspector} lists no isolate`);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let nextId = 1;
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  ws.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
    const waiter = message.id === undefined ? undefined : pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id!);
    if (message.error) waiter.reject(new Error(message.error.message));
    else waiter.resolve(message.result);
  });
  const call = <T>(method: string, params: Record<string, unknown> = {}) =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    await call("Profiler.enable");
    await call("Profiler.setSamplingInterval", { interval: 100 });
    await call("Profiler.start");
    await during();
    const { profile } = await call<{ profile: CpuProfile }>("Profiler.stop");
    return profile;
  } finally {
    ws.close();
  }
}

/** `node_modules/<pkg>` (scoped packages whole), `src/<dir>`, or the runtime's own buckets. */
function ownerOf(source: string | null, url: string, functionName: string): string {
  if (!source) {
    if (functionName.startsWith("(")) return functionName; // (garbage collector), (program), (idle)
    return url ? `runtime: ${url.replace(/^.*\//, "")}` : "runtime (native, no script)";
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(source);
  if (nm) return `node_modules/${nm[1]}`;
  const src = /(?:^|\/)(src|scripts)\/(.+)$/.exec(source);
  if (src) {
    const parts = src[2]!.split("/");
    return `${src[1]}/${parts.length > 1 ? parts.slice(0, parts[0] === "tiers" ? 2 : 1).join("/") : parts[0]}`;
  }
  return source;
}

/** Self time by owner and the top functions, as markdown. */
export function summarizeProfile(profile: CpuProfile, sourceMapFile: string, title: string, requests: number): string {
  const map = new TraceMap(readFileSync(sourceMapFile, "utf8"));
  const selfUs = new Map<number, number>();
  for (const [i, node] of profile.samples.entries()) selfUs.set(node, (selfUs.get(node) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const frame = node.callFrame;
    const mapped = frame.url && frame.lineNumber >= 0 ? originalPositionFor(map, { line: frame.lineNumber + 1, column: frame.columnNumber }) : null;
    const source = mapped?.source ?? null;
    const owner = ownerOf(source, frame.url, frame.functionName);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + us);
    const name = `${mapped?.name ?? (frame.functionName || "(anonymous)")} (${source ? `${source.replace(/^.*?(node_modules|src)\//, "$1/")}:${mapped?.line ?? "?"}` : owner})`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    total += us;
  }
  const idle = byOwner.get("(idle)") ?? 0;
  const busy = total - idle;
  const rows = (entries: Map<string, number>, limit: number) =>
    [...entries]
      .filter(([name]) => name !== "(idle)")
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, us]) => `| ${name} | ${(us / 1000).toFixed(1)} | ${((us / busy) * 100).toFixed(1)}% | ${(us / 1000 / Math.max(1, requests)).toFixed(4)} |`);
  return [
    `# CPU profile: ${title}`,
    "",
    `V8 sampling profiler (100 µs) in workerd's isolate over ${requests} requests; busy ${(busy / 1000).toFixed(0)} ms ` +
      `(${(busy / 1000 / Math.max(1, requests)).toFixed(3)} ms per request), idle ${(idle / 1000).toFixed(0)} ms. Self time, resolved through the bundle's source map.`,
    "",
    "Read with care: the profiler slows the isolate (compare the CPU per request of `npm run bench:api`), and code V8 inlined is " +
      "charged to the function it was inlined into (a middleware that calls `next()` can show the synchronous part of the whole chain " +
      "below it as its own). The split by package is steadier than the per-function list.",
    "",
    "## By package or source folder",
    "",
    "| owner | self ms | share of busy | ms per request |",
    "| --- | --- | --- | --- |",
    ...rows(byOwner, 30),
    "",
    "## Top functions",
    "",
    "| function (source) | self ms | share of busy | ms per request |",
    "| --- | --- | --- | --- |",
    ...rows(byFunction, 40),
    "",
  ].join("\n");
}
