// Reads the shared email corpus in Node (workerd cannot reach the disk) and provides it to the worker tests as base64.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { TestProject } from "vitest/node";

export interface CorpusFile {
  folder: string;
  name: string;
  base64: string;
}

declare module "vitest" {
  interface ProvidedContext {
    contentCorpus: CorpusFile[];
  }
}

/** In CI the repository is cloned with shared/ beside it; an absent corpus provides [] and the tests say they skipped. */
const corpusDir = path.resolve(import.meta.dirname, "../../../shared/corpus");

export default function setup(project: TestProject) {
  const files: CorpusFile[] = [];
  if (existsSync(corpusDir)) {
    for (const folder of readdirSync(corpusDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort()) {
      for (const name of readdirSync(path.join(corpusDir, folder)).sort()) {
        files.push({ folder, name, base64: readFileSync(path.join(corpusDir, folder, name)).toString("base64") });
      }
    }
  }
  project.provide("contentCorpus", files);
}
