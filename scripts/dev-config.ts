// What `npm run dev` and `npm run token` share: the data folder, the signing secret, the demo tenant.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { mintToken } from "./jwt";
import { projectRoot } from "./stack";

/** Where `npm run dev` keeps its databases, Miniflare state and signing secret: `.data/`, or `EDP_DATA_DIR`. */
export const dataDir = process.env.EDP_DATA_DIR ? path.resolve(process.env.EDP_DATA_DIR) : path.join(projectRoot, ".data");

/** The demo tenant `npm run dev` provisions through the Worker's own procedures (its ids are the Worker's). */
export const demoSeed = {
  tenant: { name: "Demo Outreach Co", plan: "pro" as const, clientKey: "npm-run-dev-demo-tenant" },
  admin: { email: "admin@demo.example" },
  member: { email: "member@demo.example" },
};

export interface Demo {
  tenant: { id: string; name: string };
  admin: { id: string; email: string; role: "admin" };
  member: { id: string; email: string; role: "member" };
}

const demoFile = path.join(dataDir, "demo.json");

/** The ids of the last seed, kept in .data so `npm run token` mints tokens for the same members. */
export function readDemo(): Demo | null {
  return existsSync(demoFile) ? (JSON.parse(readFileSync(demoFile, "utf8")) as Demo) : null;
}

export function writeDemo(demo: Demo): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(demoFile, JSON.stringify(demo, null, 2));
}

/** JWT_SECRET from the environment, else one generated on first run and kept in .data (git-ignored). */
export function devJwtSecret(): string {
  if (process.env.JWT_SECRET) return process.env.JWT_SECRET;
  const file = path.join(dataDir, "jwt-secret");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString("hex");
  writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}

export function mintDevToken(
  claims: { sub: string; tenant_id: string; role: "member" | "admin" | "operator" },
  ttl: string = "12h",
): Promise<string> {
  return mintToken(devJwtSecret(), claims, ttl);
}
