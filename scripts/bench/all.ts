// `npm run bench`: runs every benchmark (each `bench:*` npm script, then the load script) one after another in this
// run, and writes one report, bench-results/REPORT.md and bench-results/report.json, with every figure beside the
// floor or reference its benchmark measured in the same run. Pass DATABASE_URL / REDIS_URL to measure on real
// servers (the benchmarks start the local Neon and Upstash endpoints in front of them); embedded otherwise.
// Usage: npm run bench [-- --only notifications,olap] (bench:scale runs only when named in --only)
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { projectRoot } from "../stack";
import { benchResultsDir, type BenchFigure } from "./result";

const { values: args } = parseArgs({ options: { only: { type: "string" } } });
const pkg = JSON.parse(readFileSync(path.join(projectRoot, "package.json"), "utf8")) as { scripts: Record<string, string> };
const only = args.only?.split(",").map((s) => s.trim());
const benches = [
  ...Object.keys(pkg.scripts)
    .filter((name) => name.startsWith("bench:"))
    .map((name) => ({ name: name.slice("bench:".length), script: name, extra: [] as string[] })),
  { name: "load", script: "load", extra: [] as string[] },
  // bench:scale seeds 10 million rows on a PostgreSQL server for the better part of an hour: only when named.
].filter((b) => (only ? only.includes(b.name) : b.name !== "scale"));

interface Outcome {
  name: string;
  exitCode: number;
  seconds: number;
  stdout: string;
  json?: { figures?: BenchFigure[]; missed?: string[]; finishedAt?: string };
}

function runOne(script: string, extra: string[]): Promise<{ exitCode: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn("npm", ["run", "--silent", script, ...(extra.length ? ["--", ...extra] : [])], {
      cwd: projectRoot,
      stdio: ["ignore", "pipe", "inherit"],
      env: process.env,
    });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      process.stdout.write(chunk);
    });
    child.once("exit", (code) => resolve({ exitCode: code ?? 1, stdout }));
  });
}

const startedAt = new Date();
/** The commit measured, read before the run; local changes outside bench-results/ are flagged. */
const commit = (() => {
  try {
    const hash = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: projectRoot, encoding: "utf8" }).trim();
    const changed = execFileSync("git", ["status", "--porcelain", "--", ".", ":(exclude)bench-results"], { cwd: projectRoot, encoding: "utf8" }).trim();
    return hash + (changed ? " (with uncommitted changes)" : "");
  } catch {
    return "unknown";
  }
})();
const load = [loadavg()[0]!];
const outcomes: Outcome[] = [];
for (const bench of benches) {
  const jsonFile = path.join(benchResultsDir, `${bench.name}.json`);
  // A stale file from an earlier run must never pass for this run's figures.
  rmSync(jsonFile, { force: true });
  console.error(`\n[bench] ===== ${bench.name} (npm run ${bench.script}) =====`);
  const t0 = performance.now();
  const { exitCode, stdout } = await runOne(bench.script, bench.extra);
  const outcome: Outcome = { name: bench.name, exitCode, seconds: (performance.now() - t0) / 1000, stdout };
  if (existsSync(jsonFile)) outcome.json = JSON.parse(readFileSync(jsonFile, "utf8")) as Outcome["json"];
  outcomes.push(outcome);
  load.push(loadavg()[0]!);
}

const stores = process.env.DATABASE_URL ? `PostgreSQL server (${new URL(process.env.DATABASE_URL).host})` : "embedded PGlite";
const redis = process.env.REDIS_URL ? `Redis server (${new URL(process.env.REDIS_URL).host})` : "embedded Redis-compatible store";
const fmt = (v: number | string | undefined) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : (v ?? ""));

const md: string[] = [
  "# Benchmark report",
  "",
  `Produced by \`npm run bench\` on ${startedAt.toISOString()} at commit ${commit}; every figure below was measured by the scripts in this one run.`,
  "",
  `Machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? "unknown CPU"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}. ` +
    `Stores: ${stores} and ${redis}, each behind the local Neon and Upstash endpoints the Worker talks to (plain workerd or Miniflare, never wrangler dev). ` +
    `1-minute load average per benchmark boundary: ${load.map((l) => l.toFixed(2)).join(" → ")}.`,
  "",
  "## Summary",
  "",
  "| benchmark | exit | seconds | figures | targets missed |",
  "| --- | --- | --- | --- | --- |",
  ...outcomes.map((o) => `| ${o.name} | ${o.exitCode} | ${o.seconds.toFixed(0)} | ${o.json?.figures?.length ?? "(printed only)"} | ${o.json?.missed?.length ?? "–"} |`),
  "",
];
for (const o of outcomes) {
  md.push(`## ${o.name}`, "");
  if (o.exitCode !== 0) md.push(`**The benchmark exited with ${o.exitCode}.**`, "");
  if (o.json?.figures?.length) {
    md.push("| metric | value | unit | beside | its value |", "| --- | --- | --- | --- | --- |");
    for (const f of o.json.figures) md.push(`| ${f.metric} | ${fmt(f.value)} | ${f.unit} | ${f.floor ?? ""} | ${fmt(f.floorValue)} |`);
    md.push("");
  }
  if (o.json?.missed?.length) md.push("Targets missed:", "", ...o.json.missed.map((m) => `- ${m}`), "");
  md.push("<details><summary>The benchmark's own output</summary>", "", "```text", o.stdout.trim(), "```", "", "</details>", "");
}
writeFileSync(path.join(benchResultsDir, "REPORT.md"), md.join("\n"));
writeFileSync(
  path.join(benchResultsDir, "report.json"),
  JSON.stringify({ startedAt: startedAt.toISOString(), commit, stores, redis, load, benchmarks: outcomes.map(({ stdout: _s, ...o }) => o) }, null, 2) + "\n",
);
console.error(`\n[bench] wrote ${path.relative(projectRoot, path.join(benchResultsDir, "REPORT.md"))} and report.json`);
process.exit(outcomes.some((o) => o.exitCode !== 0) ? 1 : 0);
