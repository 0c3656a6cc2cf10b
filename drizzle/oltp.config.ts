// drizzle-kit config for the oltp database: schema in src/tiers/oltp, migrations in drizzle/oltp.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/tiers/oltp/schema.ts",
  out: "./drizzle/oltp",
  entities: { roles: false },
  // Only `drizzle-kit migrate` needs it: the owner connection string of this database.
  ...(process.env.DATABASE_URL ? { dbCredentials: { url: process.env.DATABASE_URL } } : {}),
});
