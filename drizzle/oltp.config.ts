// drizzle-kit config for the oltp database: schemas of the tiers it hosts, migrations in drizzle/oltp.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  // The jobs ledger and the content catalog live in the OLTP database too.
  schema: ["./src/tiers/oltp/schema.ts", "./src/tiers/jobs/schema.ts", "./src/tiers/content/schema.ts", "./src/lifecycle/schema.ts"],
  out: "./drizzle/oltp",
  entities: { roles: false },
  // Only `drizzle-kit migrate` needs it: the owner connection string of this database.
  ...(process.env.DATABASE_URL ? { dbCredentials: { url: process.env.DATABASE_URL } } : {}),
});
