// The three tier databases behind the local Neon endpoint: embedded PGlite, or a real server when configured.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import { startPgliteServer, type PgliteServer } from "./pglite-server";

export const dbTiers = ["oltp", "notifications", "olap"] as const;
export type DbTier = (typeof dbTiers)[number];

const tierUrlVar: Record<DbTier, string> = {
  oltp: "OLTP_DATABASE_URL",
  notifications: "NOTIFICATIONS_DATABASE_URL",
  olap: "OLAP_DATABASE_URL",
};

export interface Databases {
  kind: "pglite" | "postgres";
  /** Owner (superuser) URL of each tier's backing database, for migrations and test inspection. */
  ownerUrls: Record<DbTier, string>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** "test": fresh databases every run; "dev": kept between runs. */
  purpose: "test" | "dev";
  /** Folder for PGlite's files in dev; tests keep PGlite in memory. */
  dataDir?: string;
  /**
   * On a server, the databases are `edp_<set>_<tier>`. Default: `dev` for dev; for tests `test_<pid>_<random>`, this
   * process's own, dropped when the stack closes, so two runs on one server (CI's passes, a developer's run beside
   * CI, a benchmark, two stacks of one process) never drop each other's databases mid-run.
   */
  set?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Per-tier URLs win, then DATABASE_URL (a server; each tier gets its own database on it),
 * else embedded PGlite. The Worker never sees these URLs: it talks to the Neon endpoint.
 */
export async function startDatabases(options: DatabaseOptions): Promise<Databases> {
  const env = options.env ?? process.env;
  const explicit = dbTiers.every((tier) => env[tierUrlVar[tier]]);
  if (explicit) {
    const ownerUrls = Object.fromEntries(dbTiers.map((tier) => [tier, env[tierUrlVar[tier]] as string])) as Record<DbTier, string>;
    return { kind: "postgres", ownerUrls, close: async () => undefined };
  }
  if (env.DATABASE_URL) return serverDatabases(env.DATABASE_URL, options.purpose, options.set ?? (options.purpose === "test" ? `test_${process.pid}_${randomBytes(2).toString("hex")}` : "dev"));
  return pgliteDatabases(options);
}

async function serverDatabases(baseUrl: string, purpose: DatabaseOptions["purpose"], set: string): Promise<Databases> {
  if (!/^[a-z][a-z0-9_]{0,20}$/.test(set)) throw new Error(`database set "${set}" must be a short lower-case identifier`);
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  const ownerUrls = {} as Record<DbTier, string>;
  const names = dbTiers.map((tier) => `edp_${set}_${tier}`);
  try {
    if (purpose === "test") await dropAbandoned(admin);
    for (const tier of dbTiers) {
      const name = `edp_${set}_${tier}`;
      if (purpose === "test") await admin.query(`drop database if exists ${name} with (force)`);
      const exists = await admin.query("select 1 from pg_database where datname = $1", [name]);
      if (exists.rowCount === 0) await admin.query(`create database ${name}`);
      const url = new URL(baseUrl);
      url.pathname = `/${name}`;
      ownerUrls[tier] = url.toString();
    }
  } finally {
    await admin.end();
  }
  const close = async () => {
    if (purpose !== "test") return;
    const client = new pg.Client({ connectionString: baseUrl });
    await client.connect();
    try {
      for (const name of names) await client.query(`drop database if exists ${name} with (force)`);
    } finally {
      await client.end();
    }
  };
  return { kind: "postgres", ownerUrls, close };
}

/** Test databases of runs whose process is gone (killed before it could drop them): `edp_test_<pid>_<random>_<tier>`. */
async function dropAbandoned(admin: pg.Client): Promise<void> {
  const { rows } = await admin.query<{ datname: string }>("select datname from pg_database where datname ~ '^edp_test_[0-9]+_'");
  for (const { datname } of rows) {
    const pid = Number(/^edp_test_(\d+)_/.exec(datname)![1]);
    if (pid === process.pid || isAlive(pid)) continue;
    await admin.query(`drop database if exists ${datname} with (force)`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function pgliteDatabases(options: DatabaseOptions): Promise<Databases> {
  const instances = {} as Record<DbTier, PGlite>;
  for (const tier of dbTiers) {
    if (options.purpose === "dev" && options.dataDir) {
      const dir = path.join(options.dataDir, "pglite", tier);
      await mkdir(dir, { recursive: true });
      instances[tier] = await PGlite.create(dir);
    } else {
      instances[tier] = await PGlite.create();
    }
  }
  const server: PgliteServer = await startPgliteServer({ databases: instances, port: 0 });
  const ownerUrls = Object.fromEntries(dbTiers.map((tier) => [tier, server.url(tier, "postgres")])) as Record<DbTier, string>;
  return {
    kind: "pglite",
    ownerUrls,
    async close() {
      await server.close();
      await Promise.all(Object.values(instances).map((db) => db.close()));
    },
  };
}

/** Applies drizzle/<tier> migrations as the owner, then lets the app role log in (locally only). */
export async function migrateDatabases(databases: Databases, migrationsRoot: string): Promise<void> {
  for (const tier of dbTiers) {
    const client = new pg.Client({ connectionString: databases.ownerUrls[tier] });
    await client.connect();
    try {
      await migrate(drizzle({ client }), { migrationsFolder: path.join(migrationsRoot, tier) });
      await client.query("alter role app_user login");
    } finally {
      await client.end();
    }
  }
}
