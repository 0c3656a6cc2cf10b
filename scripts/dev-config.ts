// What `npm run dev` and `npm run token` share: the data folder, the signing secret, the demo tenant.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { mintToken } from "./jwt";
import { projectRoot } from "./stack";

/** Where `npm run dev` keeps its databases, Miniflare state and signing secret: `.data/`, or `EDP_DATA_DIR`. */
export const dataDir = process.env.EDP_DATA_DIR ? path.resolve(process.env.EDP_DATA_DIR) : path.join(projectRoot, ".data");

/** Fixed ids so tokens minted for the demo tenant keep working across restarts. */
export const demo = {
  tenant: { id: "00000000-0000-4000-8000-00000000d001", name: "Demo Outreach Co" },
  admin: { id: "00000000-0000-4000-8000-00000000a001", email: "admin@demo.example", role: "admin" as const },
  member: { id: "00000000-0000-4000-8000-00000000b001", email: "member@demo.example", role: "member" as const },
};

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
