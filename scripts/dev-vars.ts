// Which Worker variables `npm run dev` runs with: the local stack's, the email stand-in unless a provider is named,
// then a developer's `.dev.vars` file, then the shell environment (each later one wins; the stack's own addresses never move).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseEnv } from "node:util";

/** Variables the local stack provides (bindings, its endpoints, the signing secret): not taken from a developer. */
const stackOwned = /^(CONTENT_BUCKET|JOBS_.*|.*_DATABASE_URL|UPSTASH_REDIS_REST_.*|NEON_LOCAL_.*|JWT_SECRET)$/;

/** The developer's own settings (provider URL and key, webhook and push settings, CORS, ...): git-ignored, never rewritten. */
export const devVarsFile = ".dev.vars";

export interface DevVars {
  vars: Record<string, string>;
  fromFile: string[];
  fromEnvironment: string[];
  /** Whether sends go to the local stand-in (no EMAIL_PROVIDER_URL given). */
  emailToStandin: boolean;
}

/** Reads `.dev.vars` (dotenv syntax) from the project root; absent is empty. */
export function readDevVarsFile(root: string): Record<string, string> {
  const file = path.join(root, devVarsFile);
  if (!existsSync(file)) return {};
  return Object.fromEntries(Object.entries(parseEnv(readFileSync(file, "utf8"))).flatMap(([name, value]) => (value === undefined ? [] : [[name, value]])));
}

/**
 * Resolves the Worker's variables. Only names of the Worker's env schema are taken from the file and the environment,
 * so a shell's unrelated variables (PATH, HOME, tokens of other tools) never reach the Worker.
 */
export function resolveDevVars(options: {
  stackVars: Record<string, string>;
  schemaNames: string[];
  standinEmailUrl: string;
  fileVars: Record<string, string>;
  environment: Record<string, string | undefined>;
}): DevVars {
  const settable = options.schemaNames.filter((name) => !stackOwned.test(name));
  const pick = (source: Record<string, string | undefined>) =>
    Object.fromEntries(settable.flatMap((name) => (source[name] !== undefined && source[name] !== "" ? [[name, source[name]!]] : [])));
  const fromFile = pick(options.fileVars);
  const fromEnvironment = pick(options.environment);
  const vars = { ...options.stackVars, EMAIL_PROVIDER_URL: options.standinEmailUrl, ...fromFile, ...fromEnvironment };
  return {
    vars,
    fromFile: Object.keys(fromFile),
    fromEnvironment: Object.keys(fromEnvironment),
    emailToStandin: vars.EMAIL_PROVIDER_URL === options.standinEmailUrl,
  };
}
