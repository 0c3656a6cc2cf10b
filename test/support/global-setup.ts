// Starts the local stack (in its own process, outside workerd's module resolution) and hands its addresses to Miniflare.
import { spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import type { TestProject } from "vitest/node";
import { testJwtSecret } from "./constants";

export interface StackInfo {
  description: string;
  workerVars: Record<string, string>;
  neonControlUrl: string;
  upstashControlUrl: string;
  /** The email provider and webhook receiver stand-ins (scripts/stack/provider-standins.ts). */
  providersControlUrl: string;
  /** The telemetry stand-in (scripts/stack/telemetry-endpoint.ts): its control URL and its OTLP trace URL. */
  telemetryControlUrl: string;
  telemetryTracesUrl: string;
  /** The local Web Push service (web-push-testing). */
  pushServiceUrl: string;
  ownerUrls: Record<string, string>;
}

declare module "vitest" {
  interface ProvidedContext {
    stack: StackInfo;
  }
}

const root = path.resolve(import.meta.dirname, "../..");

export default async function setup(project: TestProject) {
  const child = spawn(path.join(root, "node_modules/.bin/tsx"), ["scripts/stack/serve.ts", "--purpose", "test", "--jwt-secret", testJwtSecret], {
    cwd: root,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const info = await new Promise<StackInfo>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the local stack did not start within 120 s")), 120_000);
    child.once("exit", (code) => reject(new Error(`the local stack exited with code ${code} before it was ready`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith("READY ")) return void process.stdout.write(`[stack] ${line}\n`);
      clearTimeout(timer);
      resolve(JSON.parse(line.slice("READY ".length)) as StackInfo);
    });
  });
  console.log(`[test stack] ${info.description}`);
  project.provide("stack", info);
  return async () => {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
  };
}
