// Every benchmark writes its figures as JSON to bench-results/<name>.json; `npm run bench` gathers them into one report.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { projectRoot } from "../stack";

export interface BenchFigure {
  metric: string;
  value: number | string;
  unit: string;
  /** What the figure is measured against in the same run (a floor, a reference or a target). */
  floor?: string;
  floorValue?: number | string;
  note?: string;
}

export interface BenchResult {
  figures: BenchFigure[];
  /** Targets the run missed, in words. */
  missed?: string[];
  /** The benchmark's own printed report. */
  markdown?: string;
}

export const benchResultsDir = path.join(projectRoot, "bench-results");

export function writeBenchResult(name: string, result: BenchResult): string {
  mkdirSync(benchResultsDir, { recursive: true });
  const file = path.join(benchResultsDir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ name, finishedAt: new Date().toISOString(), ...result }, null, 2) + "\n");
  return file;
}

/** Nearest-rank percentile (q in 0..1) of values sorted ascending; NaN when there are none. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
