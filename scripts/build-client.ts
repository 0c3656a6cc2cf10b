// `npm run build:client`: compiles the client entry (src/client/index.ts) into dist-client/ and keeps only
// what the entry reaches: its JavaScript (which imports nothing but @trpc/client) and the declarations its
// types name. The server's own modules are compiled only so their declarations can be written.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { projectRoot } from "./stack";

export const clientOutDir = path.join(projectRoot, "dist-client");
export const clientEntry = path.join(clientOutDir, "client", "index");

/** Relative module specifiers a declaration or JavaScript file names (`from "./x"`, `import("./x")`). */
function relativeImports(source: string): string[] {
  const specifiers = new Set<string>();
  for (const match of source.matchAll(/(?:from\s+|import\s*\(\s*)["'](\.{1,2}\/[^"']+)["']/g)) specifiers.add(match[1]!);
  return [...specifiers];
}

/** The files reachable from `start` through relative imports, resolved as `<spec>.<ext>` or `<spec>/index.<ext>`. */
function closure(start: string, ext: ".d.ts" | ".js"): Set<string> {
  const seen = new Set<string>();
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of relativeImports(readFileSync(file, "utf8"))) {
      const base = path.resolve(path.dirname(file), spec.replace(/\.js$/, ""));
      const found = [`${base}${ext}`, path.join(base, `index${ext}`)].find((candidate) => existsSync(candidate));
      if (!found) throw new Error(`${path.relative(projectRoot, file)} imports ${spec}, which was not emitted`);
      queue.push(found);
    }
  }
  return seen;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : [full];
  });
}

export function buildClient(): { declarations: number; files: number } {
  rmSync(clientOutDir, { recursive: true, force: true });
  execFileSync(path.join(projectRoot, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.client.json"], { cwd: projectRoot, stdio: "inherit" });
  // A router shape the public type does not handle would surface as `never`, which compiles but cannot be called.
  const procedures = readFileSync(path.join(clientOutDir, "client", "procedures.d.ts"), "utf8");
  if (/\bnever\b/.test(procedures)) throw new Error("dist-client/client/procedures.d.ts has a `never`: a router shape src/client/procedures.ts does not handle");
  const keep = new Set([...closure(`${clientEntry}.d.ts`, ".d.ts"), ...closure(`${clientEntry}.js`, ".js")]);
  for (const file of walk(clientOutDir)) if (!keep.has(file)) rmSync(file);
  const declarations = [...keep].filter((file) => file.endsWith(".d.ts")).length;
  return { declarations, files: keep.size };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { declarations, files } = buildClient();
  console.log(`dist-client/: ${files} files (${declarations} declarations) reachable from the client entry`);
}
