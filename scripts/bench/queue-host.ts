// The benchmark host for work that needs the queues (issue 22): the production bundle under Miniflare, called from
// Node, with the project's queues (producers and consumers as wrangler.toml declares them), R2 and Durable Objects in
// memory, logs at warn. A plain workerd (scripts/bench/host.ts) has no queue broker; `wrangler dev` adds its proxy
// Worker, a log line per request and local tracing, which is what the issue asks the benches to leave out.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { projectRoot } from "../stack";
import { assertHealthy, bundle, readWranglerToml } from "./host";

export interface QueueHost {
  base: string;
  /** The V8 inspector's address when started with one, and the Worker's name there. */
  inspector?: string;
  workerName: string;
  /** The bundle's source map (until stop). */
  sourceMap: string;
  /** The consumers' settings as served (from wrangler.toml), for the report. */
  consumers: Record<string, { maxBatchSize?: number; maxBatchTimeout?: number }>;
  /** Sends message bodies to a queue by its producer binding (JSON, sendBatch of up to 100), as the Worker's enqueue does. */
  send(binding: string, bodies: unknown[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startQueueHost(vars: Record<string, string>, opts: { inspectorPort?: number; port?: number } = {}): Promise<QueueHost> {
  const dir = mkdtempSync(path.join(tmpdir(), "edp-bench-queues-"));
  const script = await bundle(path.join(projectRoot, "src/index.ts"), path.join(dir, "bundle"));
  const toml = readWranglerToml();
  const consumers = Object.fromEntries(
    (toml.queues?.consumers ?? []).map((c) => [
      c.queue,
      { maxBatchSize: c.max_batch_size, maxBatchTimeout: c.max_batch_timeout, maxRetries: c.max_retries, deadLetterQueue: c.dead_letter_queue },
    ]),
  );
  // Miniflare 5 takes its v4 option shape through its own converter.
  const mf = new Miniflare(convertV4MiniflareOptions({
    log: new Log(LogLevel.WARN),
    host: "127.0.0.1",
    port: opts.port ?? 0,
    ...(opts.inspectorPort !== undefined ? { inspectorPort: opts.inspectorPort } : {}),
    workers: [
      {
        name: "edp-bench",
        modules: true,
        scriptPath: script,
        // Module names are taken relative to this root; the default (the working directory) would name the bundle
        // with ".." segments, which workerd refuses.
        modulesRoot: path.dirname(script),
        compatibilityDate: toml.compatibility_date,
        compatibilityFlags: toml.compatibility_flags ?? [],
        bindings: { ...toml.vars, ...vars, LOG_LEVEL: "warn" },
        r2Buckets: Object.fromEntries((toml.r2_buckets ?? []).map((b) => [b.binding, b.bucket_name])),
        queueProducers: Object.fromEntries((toml.queues?.producers ?? []).map((p) => [p.binding, { queueName: p.queue }])),
        queueConsumers: consumers,
        durableObjects: Object.fromEntries((toml.durable_objects?.bindings ?? []).map((d) => [d.name, { className: d.class_name, useSQLite: true }])),
      },
    ],
  }));
  const url = await mf.ready;
  const base = url.origin;
  const stop = async () => {
    await mf.dispose();
    rmSync(dir, { recursive: true, force: true });
  };
  await assertHealthy(base, stop);
  const send = async (binding: string, bodies: unknown[]) => {
    const producer = await mf.getQueueProducer(binding, "edp-bench");
    for (let start = 0; start < bodies.length; start += 100) {
      await producer.sendBatch(bodies.slice(start, start + 100).map((body) => ({ body, contentType: "json" as const })));
    }
  };
  return {
    base,
    consumers,
    send,
    workerName: "edp-bench",
    sourceMap: `${script}.map`,
    ...(opts.inspectorPort !== undefined ? { inspector: `127.0.0.1:${opts.inspectorPort}` } : {}),
    stop,
  };
}
