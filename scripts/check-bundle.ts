// Fails the build when the production bundle carries anything of the bench build: its floor routes (/__bench/) live
// only in scripts/bench/floor-entry.ts, which wraps the production Worker and is never its entry.
// Usage: tsx scripts/check-bundle.ts <outdir>   (npm run build runs it on dist/)
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const outdir = process.argv[2] ?? "dist";
const marker = "/__bench/";
const offending = readdirSync(outdir)
  .filter((file) => file.endsWith(".js"))
  .filter((file) => readFileSync(path.join(outdir, file), "utf8").includes(marker));
if (offending.length > 0) {
  console.error(`bundle check: ${offending.join(", ")} in ${outdir} contain ${marker} — a bench route reached the production build`);
  process.exit(1);
}
console.error(`bundle check: no bench routes in ${outdir}`);
