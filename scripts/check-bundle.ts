// Fails the build when the production bundle carries anything of the bench build: its floor routes (/__bench/) live
// only in scripts/bench/floor-entry.ts, which wraps the production Worker and is never its entry. It also fails when
// esbuild's keep-names helper is back in the bundle.
// Usage: tsx scripts/check-bundle.ts <outdir>   (npm run build runs it on dist/)
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const outdir = process.argv[2] ?? "dist";
const marker = "/__bench/";
// esbuild's keep-names helper, minified, among the helpers it declares first in the bundle:
// `x=(e,t)=>y(e,"name",{value:t,configurable:!0})`. wrangler.toml turns it off (`keep_names = false`, a CPU cost on
// every request); a build that has it again lost that setting. Only the prelude is looked at: a dependency may ship
// prebuilt code with its own copy (the Neon driver does), which no setting here changes.
const keepNames = /=\(([\w$]+),([\w$]+)\)=>[\w$]+\(\1,"name",\{value:\2,configurable:!0\}\)/;

const bundles = readdirSync(outdir)
  .filter((file) => file.endsWith(".js"))
  .map((file) => ({ file, text: readFileSync(path.join(outdir, file), "utf8") }));
const offending = bundles.filter(({ text }) => text.includes(marker)).map(({ file }) => file);
if (offending.length > 0) {
  console.error(`bundle check: ${offending.join(", ")} in ${outdir} contain ${marker} — a bench route reached the production build`);
  process.exit(1);
}
const named = bundles.filter(({ text }) => keepNames.test(text.slice(0, 2000))).map(({ file }) => file);
if (named.length > 0) {
  console.error(`bundle check: ${named.join(", ")} in ${outdir} carry esbuild's keep-names helper — set keep_names = false in wrangler.toml`);
  process.exit(1);
}
console.error(`bundle check: no bench routes and no keep-names helper in ${outdir}`);
