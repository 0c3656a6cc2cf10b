// wrangler.toml is the one source of the crons, the queue names and their retries: the code's copies must equal it.
import { readFileSync } from "node:fs";
import { parse } from "smol-toml";
import { describe, expect, it } from "vitest";
import { schedules } from "../../src/platform/cron";
import { deadLetterQueue, type JobQueue, queues } from "../../src/platform/jobs/define";
import { cronTasks, wired } from "../../src/root";

interface WranglerConfig {
  triggers?: { crons?: string[] };
  queues?: {
    producers?: Array<{ binding: string; queue: string }>;
    consumers?: Array<{ queue: string; max_retries?: number; dead_letter_queue?: string }>;
  };
}

/** Every way the code and a wrangler.toml disagree, one line each; empty when they agree. */
function driftFrom(toml: string): string[] {
  const config = parse(toml) as WranglerConfig;
  const problems: string[] = [];
  const crons = [...(config.triggers?.crons ?? [])].sort();
  const coded = Object.values(schedules).sort();
  if (JSON.stringify(crons) !== JSON.stringify(coded)) problems.push(`crons: wrangler.toml has ${JSON.stringify(crons)}, src/platform/cron.ts ${JSON.stringify(coded)}`);
  for (const task of cronTasks) if (!(task.schedule in schedules)) problems.push(`cron task ${task.name}: unknown schedule ${task.schedule}`);

  const consumers = new Map((config.queues?.consumers ?? []).map((c) => [c.queue, c]));
  const producers = new Map((config.queues?.producers ?? []).map((p) => [p.binding, p.queue]));
  for (const [name, queue] of Object.entries(queues) as Array<[JobQueue, (typeof queues)[JobQueue]]>) {
    if (producers.get(queue.binding) !== queue.name) problems.push(`queue ${name}: binding ${queue.binding} sends to ${producers.get(queue.binding)}, the code expects ${queue.name}`);
    const consumer = consumers.get(queue.name);
    if (!consumer) problems.push(`queue ${name}: no consumer for ${queue.name}`);
    else {
      // Cloudflare's default max_retries is 3.
      const maxRetries = consumer.max_retries ?? 3;
      if (maxRetries !== queue.maxRetries) problems.push(`queue ${name}: max_retries is ${maxRetries} in wrangler.toml, ${queue.maxRetries} in the code`);
      if (consumer.dead_letter_queue !== deadLetterQueue) problems.push(`queue ${name}: dead letters go to ${consumer.dead_letter_queue}, the code expects ${deadLetterQueue}`);
      // The queue must not give a job up (to the dead-letter queue) before the ledger's own count is reached.
      for (const job of wired.jobs.all.filter((j) => j.queue === name)) {
        if (job.maxAttempts > maxRetries + 1) problems.push(`job ${job.type}: maxAttempts ${job.maxAttempts} > ${name} queue's max_retries ${maxRetries} + 1`);
      }
    }
  }
  if (!consumers.has(deadLetterQueue)) problems.push(`no consumer for the dead-letter queue ${deadLetterQueue}`);
  return problems;
}

describe("wrangler.toml and the code agree", () => {
  const toml = readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8");

  it("crons, queue names, dead letters and retries match, and every job fits its queue's retries", () => {
    expect(driftFrom(toml)).toEqual([]);
  });

  it("a changed cron expression is drift", () => {
    expect(driftFrom(toml.replace('"0 * * * *"', '"0 */2 * * *"'))).toEqual([expect.stringContaining("crons:")]);
  });

  it("a lowered max_retries is drift, for the queue and for every job it can no longer carry to its last attempt", () => {
    const lowered = toml.replace(/(\[\[queues.consumers\]\]\nqueue = "edp-jobs-normal"[^[]*?max_retries = )5/, "$13");
    const problems = driftFrom(lowered);
    expect(problems).toContain("queue normal: max_retries is 3 in wrangler.toml, 5 in the code");
    expect(problems).toContainEqual(expect.stringMatching(/^job RECORD_AUDIT: maxAttempts 6 > normal queue's max_retries 3 \+ 1$/));
  });

  it("a renamed queue is drift", () => {
    expect(driftFrom(toml.replaceAll("edp-jobs-low", "edp-jobs-bulk"))).toContainEqual(expect.stringContaining("queue low:"));
  });
});
