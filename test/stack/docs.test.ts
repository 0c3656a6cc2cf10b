// The README and docs/ hold together: every relative link resolves inside the repository (and its #anchor to a
// heading), the README stays a front door, and its TypeScript example is the one CI type-checks.
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { envSchema } from "../../src/platform/env";
import { errorCodes } from "../../src/platform/errors";

const root = path.resolve(import.meta.dirname, "../..");

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? markdownFiles(full) : name.endsWith(".md") ? [full] : [];
  });
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  for (const [, heading] of markdown.replace(/```[\s\S]*?```/g, "").matchAll(/^#{1,6}\s+(.+)$/gm)) {
    found.add(heading!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-"));
  }
  return found;
}

/** Every broken relative link of a markdown file, as `file: target (why)`. */
function brokenLinks(file: string): string[] {
  const text = readFileSync(file, "utf8").replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  const problems: string[] = [];
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue; // https:, mailto:
    const [pathPart, anchor] = target!.split("#") as [string, string | undefined];
    const resolved = pathPart === "" ? file : path.resolve(path.dirname(file), decodeURIComponent(pathPart));
    const where = `${path.relative(root, file)}: ${target}`;
    if (path.relative(root, resolved).startsWith("..")) problems.push(`${where} (outside the repository)`);
    else if (!existsSync(resolved)) problems.push(`${where} (no such file)`);
    else if (anchor && resolved.endsWith(".md") && !anchors(readFileSync(resolved, "utf8")).has(anchor)) problems.push(`${where} (no such heading)`);
  }
  return problems;
}

const files = [path.join(root, "README.md"), ...markdownFiles(path.join(root, "docs")), path.join(root, "examples", "README.md")];

describe("README and docs/", () => {
  it("every relative link resolves inside the repository, anchors included", () => {
    expect(files.length).toBeGreaterThan(10);
    expect(files.flatMap(brokenLinks)).toEqual([]);
  });

  it("the check finds a missing file, a link out of the repository and a missing heading", () => {
    const sample = "[a](nope.md) [b](../../shared/ARCHITECTURE.md) [c](configuration.md#no-such-heading) [d](configuration.md#npm-run-dev) [e](https://x.test)";
    const tmp = path.join(root, "docs", `.links-probe-${process.pid}.md`);
    writeFileSync(tmp, sample);
    try {
      expect(brokenLinks(tmp).map((p) => p.replace(/^.*?: /, ""))).toEqual([
        "nope.md (no such file)",
        "../../shared/ARCHITECTURE.md (outside the repository)",
        "configuration.md#no-such-heading (no such heading)",
      ]);
    } finally {
      rmSync(tmp);
    }
  });

  it("the README is a front door: under 8 KB, the two commands, a typed-client example, curl", () => {
    const readme = readFileSync(path.join(root, "README.md"), "utf8");
    expect(readme.length).toBeLessThan(8 * 1024);
    for (const needle of ["npm install", "npm run dev", "npm test", "createClient", "curl -sG", "/openapi.json"]) expect(readme).toContain(needle);
  });

  it("the README's TypeScript example is examples/node/readme-example.ts, which CI type-checks", () => {
    const readme = readFileSync(path.join(root, "README.md"), "utf8");
    const example = readFileSync(path.join(root, "examples", "node", "readme-example.ts"), "utf8").replace(/^\/\/.*\n/, "");
    expect(readme).toContain("```ts\n" + example + "```");
  });

  it("docs/api.md's error-code table names every code, and docs/configuration.md every Worker variable", () => {
    const api = readFileSync(path.join(root, "docs", "api.md"), "utf8");
    const table = api.slice(api.indexOf("## Error codes"));
    expect(Object.keys(errorCodes).filter((code) => !table.includes(`\`${code}\``))).toEqual([]);
    const configuration = readFileSync(path.join(root, "docs", "configuration.md"), "utf8");
    expect(Object.keys(envSchema.shape).filter((name) => !configuration.includes(`\`${name}\``))).toEqual([]);
  });
});
